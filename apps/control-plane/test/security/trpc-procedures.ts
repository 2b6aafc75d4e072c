/**
 * The tRPC side of the security suites: every procedure of `appRouter` (read from the
 * router itself, so procedures added later are attacked without touching the suites),
 * joined with the policy table below, with its input as JSON Schema (from its zod
 * parser) and a helper that calls it over HTTP the way a tRPC client does.
 */
import { appRouter, type Scope } from "@hdrcap/api";
import { z } from "zod";
import type { JsonSchema } from "./routes.ts";
import type { Reply, TenantObjects, World } from "./world.ts";

/** Whose objects an input names: a tenant's real ones, or ids of the right kind that exist nowhere. */
export type Owner = Pick<TenantObjects, "ids" | "named">;

export interface ProcedurePolicy {
  /** An API key holding this scope (admin implies every scope but operator), or any valid key. */
  access: { scope: Scope } | { anyKey: true };
  /**
   * A valid input naming `owner`'s objects (fresh each call: some inputs must be unique).
   * Procedures that take none leave it out.
   */
  input?: (w: World, owner: Owner) => unknown;
  /** Changes or removes the object it names: the suites call it with ghost ids only, or with another tenant's (which must fail). */
  destructive?: true;
}

let seq = 0;
const unique = (stem: string) => `${stem}-${Date.now().toString(36)}-t${(seq++).toString(36)}`;

/** What every procedure requires. A procedure the router has and this table lacks fails the suite. */
export const PROCEDURE_POLICIES: Record<string, ProcedurePolicy> = {
  whoami: { access: { anyKey: true } },

  "apiKeys.create": { access: { scope: "admin" }, input: () => ({ name: unique("key"), scopes: ["captures:read"] }) },
  "apiKeys.list": { access: { scope: "admin" }, input: () => ({ limit: 10 }) },
  "apiKeys.revoke": { access: { scope: "admin" }, input: (_w, o) => ({ id: o.ids.key }), destructive: true },
  "apiKeys.rotate": { access: { scope: "admin" }, input: (_w, o) => ({ id: o.ids.key, gracePeriodSeconds: 60 }), destructive: true },

  "tenants.create": { access: { scope: "operator" }, input: () => ({ slug: unique("t"), name: "Tenant" }) },
  "tenants.list": { access: { scope: "operator" }, input: () => ({ limit: 10 }) },

  "audit.list": { access: { scope: "admin" }, input: () => ({ limit: 10 }) },

  "agents.list": { access: { scope: "agents:read" }, input: () => ({ limit: 10 }) },
  "agents.get": { access: { scope: "agents:read" }, input: (_w, o) => ({ id: o.ids.agt }) },
  "agents.createEnrollmentToken": { access: { scope: "agents:write" }, input: () => ({ labels: { env: "test" }, maxUses: 2 }) },
  "agents.revokeEnrollmentToken": { access: { scope: "agents:write" }, input: (_w, o) => ({ id: o.ids.etk }), destructive: true },
  "agents.remove": { access: { scope: "agents:write" }, input: (_w, o) => ({ id: o.ids.agt }), destructive: true },
  // Selects no agent, so each call is a rollout that completes at once (one may run per tenant).
  "agentUpgrades.create": { access: { scope: "agents:write" }, input: () => ({ agents: { labels: { rollout: unique("none") } }, batchSize: 2 }) },
  "agentUpgrades.list": { access: { scope: "agents:read" }, input: () => ({ limit: 10 }) },
  "agentUpgrades.get": { access: { scope: "agents:read" }, input: (_w, o) => ({ id: o.ids.upg }) },
  "agentUpgrades.cancel": { access: { scope: "agents:write" }, input: (_w, o) => ({ id: o.ids.upg }), destructive: true },

  "captures.create": { access: { scope: "captures:write" }, input: () => ({ name: unique("capture"), filter: { ports: [8080] } }) },
  "captures.list": { access: { scope: "captures:read" }, input: () => ({ limit: 10 }) },
  "captures.get": { access: { scope: "captures:read" }, input: (_w, o) => ({ id: o.ids.cap }) },
  "captures.stop": { access: { scope: "captures:write" }, input: (_w, o) => ({ id: o.ids.cap }), destructive: true },
  "captures.remove": { access: { scope: "captures:write" }, input: (_w, o) => ({ id: o.ids.cap }), destructive: true },
  "captures.records": { access: { scope: "captures:read" }, input: (_w, o) => ({ id: o.ids.cap, limit: 5 }) },
  "captures.stats": { access: { scope: "captures:read" }, input: (_w, o) => ({ id: o.ids.cap, bucketSeconds: 60 }) },

  "publishedApis.create": { access: { scope: "captures:write" }, input: (_w, o) => ({ name: unique("api"), captureId: o.ids.cap, fields: ["id", "ts"] }) },
  "publishedApis.list": { access: { scope: "captures:read" }, input: () => ({ limit: 10 }) },
  "publishedApis.get": { access: { scope: "captures:read" }, input: (_w, o) => ({ id: o.ids.api }) },
  "publishedApis.publish": { access: { scope: "captures:write" }, input: (_w, o) => ({ id: o.ids.api }), destructive: true },
  "publishedApis.deprecate": {
    access: { scope: "captures:write" },
    input: (_w, o) => ({ id: o.ids.api, sunset: new Date(Date.now() + 86_400_000).toISOString() }),
    destructive: true,
  },
  "publishedApis.retire": { access: { scope: "captures:write" }, input: (_w, o) => ({ id: o.ids.api }), destructive: true },
  "publishedApis.remove": { access: { scope: "captures:write" }, input: (_w, o) => ({ id: o.ids.api }), destructive: true },
  "publishedApis.createConsumer": { access: { scope: "captures:write" }, input: (_w, o) => ({ id: o.ids.api, name: unique("consumer") }) },
  "publishedApis.listConsumers": { access: { scope: "captures:read" }, input: (_w, o) => ({ id: o.ids.api, limit: 10 }) },
  "publishedApis.revokeConsumer": { access: { scope: "captures:write" }, input: (_w, o) => ({ id: o.ids.api, consumerId: o.ids.apc }), destructive: true },
};

export interface Procedure {
  /** "captures.records", as the URL (/trpc/<path>) and the table spell it. */
  path: string;
  type: "query" | "mutation";
  /** The zod parser of its input (undefined when it takes none). */
  parser: z.ZodType | undefined;
  /** The input as a client may send it, in JSON Schema (defaults make fields optional). */
  input: JsonSchema | undefined;
  policy: ProcedurePolicy | undefined;
}

interface RouterInternals {
  _def: { procedures: Record<string, { _def: { type: "query" | "mutation" | "subscription"; inputs: z.ZodType[] } }> };
}

export function routerProcedures(): Procedure[] {
  const procedures = (appRouter as unknown as RouterInternals)._def.procedures;
  return Object.entries(procedures).map(([path, p]) => {
    if (p._def.type === "subscription") throw new Error(`${path}: subscriptions are not covered by the security suites yet`);
    if (p._def.inputs.length > 1) throw new Error(`${path}: chained .input() parsers are not covered by the security suites yet`);
    const parser = p._def.inputs[0];
    return {
      path,
      type: p._def.type,
      parser,
      input: parser ? (z.toJSONSchema(parser, { io: "input", unrepresentable: "any" }) as JsonSchema) : undefined,
      policy: PROCEDURE_POLICIES[path],
    };
  });
}

/** Procedures the router has that the table does not declare, and entries the router no longer has. */
export function undeclaredProcedures(procedures: Procedure[]): { missing: string[]; stale: string[] } {
  const paths = new Set(procedures.map((p) => p.path));
  return { missing: procedures.filter((p) => !p.policy).map((p) => p.path), stale: Object.keys(PROCEDURE_POLICIES).filter((k) => !paths.has(k)) };
}

/** Ids of every kind that exist nowhere, so a granted call changes nothing (NOT_FOUND proves the scope check passed). */
export function ghostOwner(real: Owner): Owner {
  return { ids: Object.fromEntries(Object.keys(real.ids).map((prefix) => [prefix, `${prefix}_Ghost0000000000000000`])), named: real.named };
}

/** Whether the procedure's input names objects (ids), so another tenant's objects must be NOT_FOUND. */
export function namesObjects(w: World, p: Procedure): boolean {
  const input = p.policy?.input;
  if (!input) return false;
  const sent = JSON.stringify(input(w, w.a));
  return Object.values(w.a.ids).some((id) => sent.includes(id));
}

/**
 * Calls the procedure as @trpc/client's httpLink does: a query is GET /trpc/<path>?input=<JSON>,
 * a mutation POSTs the JSON. `rawInput` sends those bytes as they are (malformed JSON).
 */
export function callProcedure(w: World, p: Procedure, opts: { key?: string; input?: unknown; rawInput?: string }): Promise<Reply> {
  const encoded = opts.rawInput !== undefined ? opts.rawInput : opts.input === undefined ? undefined : JSON.stringify(opts.input);
  if (p.type === "query") {
    const query = encoded === undefined ? "" : `?input=${encodeURIComponent(encoded)}`;
    return w.call("GET", `/trpc/${p.path}${query}`, { key: opts.key });
  }
  return w.call("POST", `/trpc/${p.path}`, { key: opts.key, rawBody: encoded, headers: encoded === undefined ? {} : { "content-type": "application/json" } });
}

/** A tRPC error's code ("NOT_FOUND"), our error code (apiCode) and issues, when the reply is one. */
export function trpcError(res: Reply): { code: string | undefined; apiCode: string | null | undefined; issues: { path: string; message: string }[] } {
  const data = res.body?.error?.data;
  return { code: data?.code, apiCode: data?.apiCode, issues: Array.isArray(data?.issues) ? data.issues : [] };
}

/** Why this reply is not a well-formed tRPC error of its HTTP status, or undefined when it is. */
export function trpcErrorProblem(res: Reply): string | undefined {
  const e = res.body?.error;
  if (!e || typeof e !== "object") return `status ${res.status} without a tRPC error body: ${res.text.slice(0, 200)}`;
  if (typeof e.message !== "string" || e.message.length === 0) return "error without a message";
  if (e.data?.httpStatus !== res.status) return `data.httpStatus ${e.data?.httpStatus} differs from the HTTP status ${res.status}`;
  if (typeof e.data?.code !== "string") return "error without data.code";
  if (e.data.stack !== undefined) return "error carries a stack trace";
  if (typeof e.data.requestId !== "string" || e.data.requestId !== res.headers.get("x-request-id")) return `data.requestId ${e.data.requestId} differs from X-Request-Id`;
  if (res.status === 400 && e.data.code === "BAD_REQUEST") {
    const { issues } = trpcError(res);
    if (issues.length === 0) return "BAD_REQUEST without issues";
    for (const i of issues) if (typeof i?.path !== "string" || typeof i?.message !== "string") return `malformed issue ${JSON.stringify(i)}`;
  }
  return undefined;
}

/** Whether some issue of a BAD_REQUEST names the field (`input.name`, `input.filter.ports.0`, …). */
export function trpcNamesField(res: Reply, field: string): boolean {
  return trpcError(res).issues.some((i) => i.path === field || i.path.startsWith(`${field}.`));
}

export function describeProcedureCall(what: string, res: Reply): string {
  return `${what} → ${res.status} ${res.text.slice(0, 300)}`;
}
