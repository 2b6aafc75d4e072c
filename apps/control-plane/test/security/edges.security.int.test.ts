/**
 * The edges of input handling, per documented route: unknown body fields on strict
 * schemas (400), bodies over the limit (413), CRLF in any parameter never reaching a
 * response header, out-of-range numbers, times Postgres cannot hold and forged cursors
 * (400 naming the parameter, never 500).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeCall, errorBodyProblem, namesField } from "./assertions.ts";
import { bodyFieldPaths, withField } from "./junk.ts";
import { callRoute, documentedRoutes, ownedPathValues, type JsonSchema, type Route } from "./routes.ts";
import { createWorld, type World } from "./world.ts";

let w: World;
let routes: Route[];

beforeAll(async () => {
  w = await createWorld();
  routes = await documentedRoutes(w);
});
afterAll(async () => w?.close());

/** The key that passes the route's scope check, so the input (not the scope) decides the answer. */
const keyFor = (r: Route) => {
  const access = r.policy?.access;
  if (!access || "public" in access) return undefined;
  return "scope" in access && access.scope === "operator" ? w.operatorKey : w.a.adminKey;
};
const withBody = () => routes.filter((r) => r.body);
/** Routes that change nothing when called, so they may be called with A's real objects. */
const nonDestructive = (r: Route) => r.method !== "DELETE" && !/\/(retire|stop|rotate|cancel)$/.test(r.path);
const pathValuesFor = (r: Route) =>
  nonDestructive(r) ? ownedPathValues(r, w.a) : Object.fromEntries(r.pathParams.map((p) => [p.name, ownedPathValues(r, w.a)[p.name]!.replace(/_.*/, "_Ghost0000000000000000")]));

describe("input edges", () => {
  it("rejects unknown fields with 400 on every strict body schema, at every level, naming the field", async () => {
    const failures: string[] = [];
    let checked = 0;
    for (const r of withBody()) {
      const strictObjects: { path: string[]; schema: JsonSchema }[] = [{ path: [], schema: r.body! }, ...bodyFieldPaths(r.body!).filter((f) => f.schema.properties)];
      for (const o of strictObjects.filter((x) => x.schema.additionalProperties === false)) {
        const base = r.policy?.body?.(w) ?? {};
        const parent = o.path.reduce((n: any, k) => n?.[k], base);
        const body = withField(o.path.length && parent === undefined ? withField(base, o.path, {}) : base, [...o.path, "zzUnknownField"], 1);
        const res = await callRoute(w, r, { key: keyFor(r), pathValues: pathValuesFor(r), body });
        checked++;
        const field = ["body", ...o.path].join(".");
        const mentions = res.status === 400 && namesField(res, field) && res.text.includes("zzUnknownField");
        if (!mentions || errorBodyProblem(res)) failures.push(describeCall(`${r.id} ${field}.zzUnknownField`, res));
      }
    }
    expect(failures).toEqual([]);
    expect(checked).toBeGreaterThan(10);
  });

  it("answers 413 with the error body to every body over 1 MiB, with or without Content-Length", async () => {
    const failures: string[] = [];
    const big = JSON.stringify({ name: "x".repeat(1024 * 1024 + 10) });
    for (const r of withBody()) {
      const path = callPath(r);
      const declared = await w.call(r.method, path, { key: keyFor(r), rawBody: big, headers: { "content-type": "application/json", "content-length": String(big.length) } });
      if (declared.status !== 413 || declared.body?.error?.code !== "PAYLOAD_TOO_LARGE" || errorBodyProblem(declared)) failures.push(describeCall(`${r.id} (Content-Length)`, declared));
      // Chunked: the limit must hold while reading, not only when the size is announced.
      const chunks = new ReadableStream<Uint8Array>({
        start(ctrl) {
          const chunk = new TextEncoder().encode("x".repeat(64 * 1024));
          ctrl.enqueue(new TextEncoder().encode('{"name":"'));
          for (let i = 0; i < 20; i++) ctrl.enqueue(chunk);
          ctrl.enqueue(new TextEncoder().encode('"}'));
          ctrl.close();
        },
      });
      const headers: Record<string, string> = { "content-type": "application/json" };
      const key = keyFor(r) ?? r.policy?.credential?.(w);
      if (key) headers.authorization = `Bearer ${key}`;
      const res = await w.app.request(path, { method: r.method, headers, body: chunks, duplex: "half" } as RequestInit);
      const text = await res.text();
      if (res.status !== 413) failures.push(`${r.id} (chunked) → ${res.status} ${text.slice(0, 200)}`);
    }
    expect(failures).toEqual([]);
  });

  it("never reflects CRLF from any parameter into response headers", async () => {
    const evil = "x\r\nSet-Cookie: pwned=1\r\nX-Injected: yes";
    const failures: string[] = [];
    for (const r of routes) {
      const own = pathValuesFor(r);
      const attempts = [
        ...r.pathParams.map((p) => ({ what: `param.${p.name}`, pathValues: { ...own, [p.name]: evil }, query: {} })),
        ...r.queryParams.map((p) => ({ what: `query.${p.name}`, pathValues: own, query: { [p.name]: evil } })),
        { what: "query.header.x-a", pathValues: own, query: { "header.x-a": evil } },
      ];
      for (const a of attempts) {
        const res = await callRoute(w, r, { key: keyFor(r), pathValues: a.pathValues, query: a.query });
        const bad = [...res.headers].filter(([name, value]) => name === "set-cookie" || name === "x-injected" || /[\r\n]|pwned/.test(value));
        if (res.status >= 500 || bad.length) failures.push(`${r.id} ${a.what} → ${res.status} ${JSON.stringify(bad)}`);
      }
    }
    expect(failures).toEqual([]);
  });

  it("does not echo request ids it did not validate, and refuses a Last-Event-ID outside the record id range", async () => {
    for (const sent of ['abc"; Set-Cookie: pwned=1', "x".repeat(129), "ünïcode", "a b"]) {
      const res = await w.call("GET", "/v1/whoami", { key: w.a.adminKey, headers: { "x-request-id": Buffer.from(sent, "utf8").toString("latin1") } });
      expect(res.status).toBe(200);
      expect(res.headers.get("x-request-id")).toMatch(/^req_[A-Za-z0-9]+$/);
    }
    const stream = `/v1/captures/${w.a.ids.cap}/stream`;
    for (const id of ["9999999999999999999", "-1", "1e5", "' or 1=1 --", "18446744073709551616"]) {
      const res = await w.call("GET", stream, { key: w.a.adminKey, headers: { "last-event-id": id } });
      expect(res.status, `Last-Event-ID ${id}`).toBe(400);
      expect(errorBodyProblem(res)).toBeUndefined();
      expect(namesField(res, "header.Last-Event-ID")).toBe(true);
    }
  });

  it("answers 400 naming the parameter to numbers just outside their documented range, and accepts the bounds", async () => {
    const failures: string[] = [];
    for (const r of routes.filter(nonDestructive)) {
      for (const p of r.queryParams.filter((q) => q.schema.type === "integer" || q.schema.type === "number")) {
        const cases: [string, boolean][] = [];
        if (p.schema.minimum !== undefined) cases.push([String(p.schema.minimum - 1), true], [String(p.schema.minimum), false]);
        if (p.schema.maximum !== undefined) cases.push([String(p.schema.maximum + 1), true], [String(p.schema.maximum), false]);
        if (p.schema.type === "integer") cases.push(["1.5", true], ["9".repeat(30), true]);
        for (const [value, reject] of cases) {
          const res = await callRoute(w, r, { key: keyFor(r), pathValues: pathValuesFor(r), query: { [p.name]: value } });
          const ok = reject ? res.status === 400 && namesField(res, `query.${p.name}`) : res.status < 400 || !namesField(res, `query.${p.name}`);
          if (!ok || res.status >= 500) failures.push(describeCall(`${r.id} ${p.name}=${value}`, res));
        }
      }
    }
    expect(failures).toEqual([]);
  });

  it("never gives 500 for times at the edges of what ISO 8601 and Postgres hold (year 0000 → 400)", async () => {
    const failures: string[] = [];
    const times: [string, boolean][] = [
      ["0000-01-01T00:00:00Z", true],
      ["0001-01-01T00:00:00+01:00", true],
      ["0001-01-01T00:00:00Z", false],
      ["1970-01-01T00:00:00Z", false],
      ["9999-12-31T23:59:59.999Z", false],
      ["2026-02-29T00:00:00Z", true],
    ];
    for (const r of routes.filter(nonDestructive)) {
      for (const p of r.queryParams.filter((q) => q.schema.format === "date-time")) {
        for (const [value, reject] of times) {
          const res = await callRoute(w, r, { key: keyFor(r), pathValues: pathValuesFor(r), query: { [p.name]: value } });
          const ok = reject ? res.status === 400 && namesField(res, `query.${p.name}`) : res.status === 200;
          if (!ok) failures.push(describeCall(`${r.id} ${p.name}=${value}`, res));
        }
      }
    }
    expect(failures).toEqual([]);
  });

  it("answers 400 naming the cursor to forged cursors on every paginated route, never 500", async () => {
    const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64url");
    const forged = ["1|5", "2026-01-01T00:00:00.000Z|9999999999999999999", "+275760-09-13T00:00:00.000Z|1", "0000-01-01T00:00:00.000Z|1", "' or 1=1 --", "x".repeat(65), "key_' or '1'='1", "\u0000"].map(b64);
    const failures: string[] = [];
    for (const r of routes.filter((x) => nonDestructive(x) && x.queryParams.some((p) => p.name === "cursor"))) {
      for (const cursor of [...forged, "%%%", "not base64!"]) {
        const res = await callRoute(w, r, { key: keyFor(r), pathValues: pathValuesFor(r), query: { cursor } });
        if (res.status !== 400 || !namesField(res, "query.cursor") || errorBodyProblem(res)) failures.push(describeCall(`${r.id} cursor=${cursor}`, res));
      }
    }
    expect(failures).toEqual([]);
  });
});

function callPath(r: Route): string {
  return r.path.replace(/\{([^}]+)\}/g, (_m, name: string) => pathValuesFor(r)[name]!);
}
