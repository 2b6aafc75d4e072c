import { parseHeaderFilters, validationError } from "@hdrcap/api";
import { stream } from "hono/streaming";
import { createRouter } from "../openapi.ts";
import { CSV_COLUMNS, csvLine, exportCaptureRecords } from "../../services/records.ts";
import * as routes from "./captures.routes.ts";

export const capturesRouter = createRouter()
  .openapi(routes.createCapture, async (c) => c.json(await c.get("services").captures.create(c.get("auth"), c.req.valid("json")), 201))
  .openapi(routes.listCaptures, async (c) => c.json(await c.get("services").captures.list(c.get("auth"), c.req.valid("query")), 200))
  .openapi(routes.getCapture, async (c) => c.json(await c.get("services").captures.get(c.get("auth"), c.req.valid("param").id), 200))
  .openapi(routes.deleteCapture, async (c) => c.json(await c.get("services").captures.remove(c.get("auth"), c.req.valid("param").id), 200))
  .openapi(routes.stopCapture, async (c) => c.json(await c.get("services").captures.stop(c.get("auth"), c.req.valid("param").id), 200))
  .openapi(routes.listRecords, async (c) => {
    const { format, ...query } = c.req.valid("query");
    const { filters, issues } = parseHeaderFilters(c.req.queries());
    if (issues.length) throw validationError(issues);
    const id = c.req.valid("param").id;
    if (format === "json") return c.json(await c.get("services").captures.records(c.get("auth"), id, { ...query, headers: filters }), 200);

    // Exports: check access before the first byte, then stream page by page.
    const pages = exportCaptureRecords(c.get("deps").db, c.get("auth"), id, { ...query, headers: filters });
    const first = await pages.next();
    c.header("Content-Type", format === "csv" ? "text/csv; charset=utf-8" : "application/x-ndjson");
    c.header("Content-Disposition", `attachment; filename="${id}.${format}"`);
    return stream(c, async (out) => {
      if (format === "csv") await out.write(CSV_COLUMNS.join(",") + "\r\n");
      const encode = format === "csv" ? csvLine : (r: unknown) => JSON.stringify(r) + "\n";
      for (let page = first; !page.done; page = await pages.next()) {
        if (out.aborted) break;
        await out.write(page.value.map(encode).join(""));
      }
    }) as never;
  })
  .openapi(routes.recordStats, async (c) => {
    const { filters, issues } = parseHeaderFilters(c.req.queries());
    if (issues.length) throw validationError(issues);
    return c.json(await c.get("services").captures.stats(c.get("auth"), c.req.valid("param").id, { ...c.req.valid("query"), headers: filters }), 200);
  });
