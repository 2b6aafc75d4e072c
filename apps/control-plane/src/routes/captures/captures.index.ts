import { parseHeaderFilters, validationError } from "@hdrcap/api";
import { stream, streamSSE } from "hono/streaming";
import { createRouter } from "../openapi.ts";
import { ApiError } from "@hdrcap/api";
import { assertCapture, CSV_COLUMNS, csvLine, exportCaptureRecords, isRecordId, tailCaptureRecords } from "../../services/records.ts";
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
  })
  .openapi(routes.streamRecords, async (c) => {
    const { filters, issues } = parseHeaderFilters(c.req.queries());
    if (issues.length) throw validationError(issues);
    const lastEventId = c.req.header("last-event-id");
    if (lastEventId !== undefined && !isRecordId(lastEventId)) {
      throw new ApiError("BAD_REQUEST", "invalid header Last-Event-ID: must be a record id sent by this stream", [{ path: "header.Last-Event-ID", message: "must be a record id" }]);
    }
    const query = c.req.valid("query");
    const abort = new AbortController();
    const tail = tailCaptureRecords(c.get("deps").db, c.get("auth"), c.req.valid("param").id, { ...query, headers: filters }, {
      afterId: lastEventId,
      fromNow: query.since === undefined,
      signal: abort.signal,
    });
    // Access is checked (404, 403) before the stream starts.
    await assertCapture(c.get("deps").db, c.get("auth"), c.req.valid("param").id);
    return streamSSE(c, async (sse) => {
      sse.onAbort(() => abort.abort());
      const keepAlive = setInterval(() => void sse.write(": keep-alive\n\n"), 15_000);
      try {
        for (let batch = await tail.next(); !batch.done && !sse.aborted; batch = await tail.next()) {
          for (const r of batch.value) await sse.writeSSE({ id: r.id, event: "record", data: JSON.stringify(r) });
        }
      } finally {
        clearInterval(keepAlive);
        abort.abort();
      }
    }) as never;
  });
