/**
 * `hdrcap apis …`: the CLI over the published APIs routes (/v1/apis): create, list,
 * get, the lifecycle (publish, deprecate, retire) and the consumer keys of one API
 * (`apis keys create|list|revoke`). Tables by default, `--json` for scripts.
 */
import { PUBLISHED_RECORD_FIELDS, type ConsumerView, type CreatedConsumer, type Page, type PublishedApiFilter, type PublishedApiView } from "@hdrcap/api";
import type { Command } from "commander";
import { createApiClient } from "./api-client.ts";
import { resolveLogin } from "./config.ts";
import { printTable } from "./output.ts";

interface LoginFlags {
  url?: string;
  apiKey?: string;
  json?: boolean;
}

const list = (v: string, prev: string[] = []) => [...prev, ...v.split(",").map((s) => s.trim()).filter(Boolean)];
const repeat = (v: string, prev: string[] = []) => [...prev, v];
const apiPath = (id: string, rest = "") => `/v1/apis/${encodeURIComponent(id)}${rest}`;

function integer(flag: string) {
  return (v: string) => {
    if (!/^\d+$/.test(v)) throw new Error(`${flag}: "${v}" is not a whole number`);
    return Number(v);
  };
}

/** `--header name=value` (repeatable) into the filter's header pairs. */
function headerPairs(values: string[] | undefined): PublishedApiFilter["headers"] {
  if (!values) return undefined;
  return values.map((pair) => {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new Error(`--header: "${pair}" is not name=value`);
    return { name: pair.slice(0, eq), value: pair.slice(eq + 1) };
  });
}

function describeApi(a: PublishedApiView): string {
  const filter = Object.entries(a.filter)
    .map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : String(v)}`)
    .join(" ");
  return [
    `${a.id} "${a.name}" ${a.state}, served at ${a.path}`,
    `  capture ${a.captureId}; fields ${a.fields.join(",")}; filter ${filter || "(none)"}`,
    ...(a.description ? [`  ${a.description}`] : []),
    ...(a.sunsetAt ? [`  sunset ${a.sunsetAt}`] : []),
  ].join("\n");
}

const apiRows = (items: PublishedApiView[]) => items.map((a) => ({ ...a, fields: a.fields.join(",") }));
const API_COLUMNS = ["id", "name", "state", "captureId", "path", "fields", "updatedAt"] as const;
const consumerRows = (items: ConsumerView[]) => items.map((c) => ({ ...c, rateLimit: c.rateLimit ? `${c.rateLimit.perSecond}/s burst ${c.rateLimit.burst}` : "default" }));

export function registerApisCommands(program: Command, loginOptions: (cmd: Command) => Command): void {
  const apis = program.command("apis").description("published APIs: a capture's records served to outside consumers at /apis/<tenant>/<name>");

  loginOptions(apis.command("create").argument("<name>").requiredOption("--capture <id>", "the capture whose records it serves"))
    .description("create a published API (a draft: consumers get 404 until it is published)")
    .requiredOption("--fields <names>", `record fields served, in order (${PUBLISHED_RECORD_FIELDS.join(",")})`, list)
    .option("--description <text>", "shown in the API's own OpenAPI document")
    .option("--kind <kind>", "fixed filter: request or response")
    .option("--method <method>", "fixed filter: HTTP method")
    .option("--path-prefix <prefix>", "fixed filter: path prefix")
    .option("--status <code>", "fixed filter: response status", integer("--status"))
    .option("--has-header <name>", "fixed filter: records carrying this header")
    .option("--header <name=value>", "fixed filter: a header value (repeatable, up to 8)", repeat)
    .option("--agent <id>", "fixed filter: one agent's records")
    .action(async (name: string, o: LoginFlags & { capture: string; fields: string[]; description?: string; kind?: string; method?: string; pathPrefix?: string; status?: number; hasHeader?: string; header?: string[]; agent?: string }) => {
      const filter = Object.fromEntries(
        Object.entries({ kind: o.kind, method: o.method, pathPrefix: o.pathPrefix, status: o.status, hasHeader: o.hasHeader, headers: headerPairs(o.header), agent: o.agent }).filter(([, v]) => v !== undefined),
      );
      const created = await createApiClient(resolveLogin(o)).post<PublishedApiView>("/v1/apis", {
        name,
        captureId: o.capture,
        fields: o.fields,
        filter,
        ...(o.description !== undefined ? { description: o.description } : {}),
      });
      console.log(o.json ? JSON.stringify(created, null, 2) : `created ${describeApi(created)}`);
    });

  loginOptions(apis.command("list"))
    .description("list the tenant's published APIs")
    .action(async (o: LoginFlags) => {
      const api = createApiClient(resolveLogin(o));
      const items: PublishedApiView[] = [];
      let cursor: string | null = null;
      do {
        const page: Page<PublishedApiView> = await api.get(`/v1/apis?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
        items.push(...page.items);
        cursor = page.nextCursor;
      } while (cursor);
      if (o.json) return console.log(JSON.stringify(items, null, 2));
      printTable(apiRows(items), [...API_COLUMNS]);
    });

  loginOptions(apis.command("get").argument("<id>"))
    .description("show one published API")
    .action(async (id: string, o: LoginFlags) => {
      const a = await createApiClient(resolveLogin(o)).get<PublishedApiView>(apiPath(id));
      console.log(o.json ? JSON.stringify(a, null, 2) : describeApi(a));
    });

  loginOptions(apis.command("publish").argument("<id>"))
    .description("serve a draft to its consumers")
    .action(async (id: string, o: LoginFlags) => {
      const a = await createApiClient(resolveLogin(o)).post<PublishedApiView>(apiPath(id, "/publish"), {});
      console.log(o.json ? JSON.stringify(a, null, 2) : `published ${a.id} at ${a.path}`);
    });

  loginOptions(apis.command("deprecate").argument("<id>"))
    .description("keep serving it, with Deprecation (and Sunset) headers")
    .option("--sunset <iso>", "when it will be retired (the Sunset header)")
    .action(async (id: string, o: LoginFlags & { sunset?: string }) => {
      const a = await createApiClient(resolveLogin(o)).post<PublishedApiView>(apiPath(id, "/deprecate"), o.sunset ? { sunset: o.sunset } : {});
      console.log(o.json ? JSON.stringify(a, null, 2) : `deprecated ${a.id}${a.sunsetAt ? `, sunset ${a.sunsetAt}` : ""}`);
    });

  loginOptions(apis.command("retire").argument("<id>"))
    .description("stop serving it (consumers get 410 Gone)")
    .action(async (id: string, o: LoginFlags) => {
      const a = await createApiClient(resolveLogin(o)).post<PublishedApiView>(apiPath(id, "/retire"), {});
      console.log(o.json ? JSON.stringify(a, null, 2) : `retired ${a.id}`);
    });

  const keys = apis.command("keys").description("consumer keys (hcc_…) of one published API");

  loginOptions(keys.command("create").argument("<api-id>").argument("<name>"))
    .description("issue a consumer key; prints the secret once")
    .option("--per-second <n>", "this consumer's rate limit (requests/s; needs --burst)", integer("--per-second"))
    .option("--burst <n>", "this consumer's burst", integer("--burst"))
    .action(async (apiId: string, name: string, o: LoginFlags & { perSecond?: number; burst?: number }) => {
      if ((o.perSecond === undefined) !== (o.burst === undefined)) throw new Error("--per-second and --burst go together");
      const created = await createApiClient(resolveLogin(o)).post<CreatedConsumer>(apiPath(apiId, "/consumers"), {
        name,
        ...(o.perSecond !== undefined ? { rateLimit: { perSecond: o.perSecond, burst: o.burst } } : {}),
      });
      console.log(o.json ? JSON.stringify(created, null, 2) : `consumer ${created.consumer.id} "${created.consumer.name}" created; key (shown once): ${created.key}`);
    });

  loginOptions(keys.command("list").argument("<api-id>"))
    .description("list the API's consumers (revoked ones too)")
    .action(async (apiId: string, o: LoginFlags) => {
      const api = createApiClient(resolveLogin(o));
      const items: ConsumerView[] = [];
      let cursor: string | null = null;
      do {
        const page: Page<ConsumerView> = await api.get(`${apiPath(apiId, "/consumers")}?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
        items.push(...page.items);
        cursor = page.nextCursor;
      } while (cursor);
      if (o.json) return console.log(JSON.stringify(items, null, 2));
      printTable(consumerRows(items), ["id", "name", "prefix", "rateLimit", "revokedAt", "createdAt"]);
    });

  loginOptions(keys.command("revoke").argument("<api-id>").argument("<consumer-id>"))
    .description("revoke a consumer key (refused on every replica within moments)")
    .action(async (apiId: string, consumerId: string, o: LoginFlags) => {
      const c = await createApiClient(resolveLogin(o)).delete<ConsumerView>(apiPath(apiId, `/consumers/${encodeURIComponent(consumerId)}`));
      console.log(o.json ? JSON.stringify(c, null, 2) : `revoked ${c.id}`);
    });
}
