/**
 * Bad input never gives a 5xx, for every documented route and every parameter: path,
 * query and each JSON body field get SQL-looking, huge, unicode (NUL, lone surrogates,
 * RTL, emoji), numeric-edge, wrongly typed and nested junk (fast-check), and whole
 * bodies get malformed JSON and wrong content types. Every answer is below 500; a 4xx
 * carries the standard error body; a 400 names the parameter in `issues`; a value that
 * certainly breaks the documented schema gets that 400. The server answers normally after.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorBodyProblem, namesField } from "./assertions.ts";
import { bodyFieldPaths, fieldToName, firstFailure, junkString, junkValue, MALFORMED_JSON, queryValueViolates, showValue, STRING_EXAMPLES, VALUE_EXAMPLES, violates, withField, WRONG_CONTENT_TYPES } from "./junk.ts";
import { callRoute, documentedRoutes, ownedPathValues, undeclared, type Param, type Route } from "./routes.ts";
import { createWorld, type Reply, type World } from "./world.ts";

/** fast-check runs per parameter (per body field); whole-body cases run once each. */
const RUNS = 20;

let w: World;
let routes: Route[] = [];

// The route list must exist when tests are declared, so it is read from a throwaway world.
const declared = await (async () => {
  const probe = await createWorld();
  try {
    return await documentedRoutes(probe);
  } finally {
    await probe.close();
  }
})();
// Reads before writes before deletes, so a delete does not remove what later routes query.
const ORDER = ["GET", "POST", "PUT", "PATCH", "DELETE"];
const ordered = [...declared].sort((x, y) => ORDER.indexOf(x.method) - ORDER.indexOf(y.method));

beforeAll(async () => {
  w = await createWorld();
  routes = await documentedRoutes(w);
});
afterAll(async () => w?.close());

const route = (id: string) => routes.find((r) => r.id === id)!;
/** The key that passes the route's scope check, so the input (not the scope) decides the answer. */
const keyFor = (r: Route) => {
  const access = r.policy?.access;
  if (!access || "public" in access) return undefined;
  return "scope" in access && access.scope === "operator" ? w.operatorKey : w.a.adminKey;
};

/** Why this answer to a request that broke `field` (or undefined when it is acceptable). */
function judge(res: Reply, field: string, mustReject: boolean): string | undefined {
  if (res.status >= 500) return `server error ${res.status}: ${res.text.slice(0, 300)}`;
  if (res.status >= 400) {
    const problem = errorBodyProblem(res);
    if (problem) return problem;
    if (res.status === 400 && !namesField(res, field)) return `400 whose issues do not name ${field}: ${JSON.stringify(res.body.error.issues).slice(0, 300)}`;
  } else if (mustReject) return `accepted (${res.status}) a value that breaks the documented schema of ${field}`;
  if (mustReject && res.status !== 400 && res.status !== 404 && res.status !== 401) return `expected 400 naming ${field}, got ${res.status}: ${res.text.slice(0, 200)}`;
  return undefined;
}

const property = <T,>(arb: fc.Arbitrary<T>, check: (v: T) => Promise<string | undefined>, examples: T[] = []) => firstFailure(arb, check, RUNS, examples);

async function stillHealthy(): Promise<void> {
  const res = await w.call("GET", "/v1/whoami", { key: w.a.adminKey });
  expect(res.status, "the server stopped answering normally").toBe(200);
}

describe("bad input never gives 500", () => {
  it("attacks every route /openapi.json lists", () => {
    expect(undeclared(declared)).toEqual([]);
    expect(ordered.length).toBeGreaterThan(15);
  });

  for (const { id } of ordered) {
    it(`${id}: junk in each path and query parameter gives a 4xx naming it, never 500`, async () => {
      const r = route(id);
      const failures: string[] = [];
      const own = ownedPathValues(r, w.a);
      for (const p of [...r.pathParams, ...r.queryParams] as Param[]) {
        const field = `${p.in === "path" ? "param" : "query"}.${p.name}`;
        const failure = await property(junkString, async (v) => {
          const res =
            p.in === "path"
              ? await callRoute(w, r, { key: keyFor(r), pathValues: { ...own, [p.name]: v } })
              : await callRoute(w, r, { key: keyFor(r), pathValues: own, query: { [p.name]: v } });
          // A junk path segment may also miss the route (404) or name another object; only query values are held to the schema.
          return judge(res, field, p.in === "query" && queryValueViolates(p.schema, v));
        }, STRING_EXAMPLES);
        if (failure) failures.push(`${field}: ${failure}`);
      }
      // Unknown and repeated query parameters.
      const extra = await property(fc.tuple(junkString.filter((k) => k.length > 0 && k.length < 200), junkString), async ([k, v]) => {
        const res = await callRoute(w, r, { key: keyFor(r), pathValues: own, query: { [k]: v, [k + "2"]: v } });
        return res.status >= 500 ? `server error ${res.status}: ${res.text.slice(0, 200)}` : res.status >= 400 ? errorBodyProblem(res) : undefined;
      });
      if (extra) failures.push(`unknown query parameters: ${extra}`);
      expect(failures).toEqual([]);
      await stillHealthy();
    });

    const declaredRoute = declared.find((r) => r.id === id)!;
    if (!declaredRoute.body) continue;

    it(`${id}: junk in each body field gives a 4xx naming it, never 500`, async () => {
      const r = route(id);
      const failures: string[] = [];
      const own = ownedPathValues(r, w.a);
      for (const f of bodyFieldPaths(r.body!)) {
        const field = ["body", ...f.path].join(".");
        const failure = await property(junkValue, async (v) => {
          const base = r.policy?.body?.(w) ?? {};
          const res = await callRoute(w, r, { key: keyFor(r), pathValues: own, body: withField(base, f.path, v) });
          return judge(res, ["body", ...fieldToName(base, f.path)].join("."), violates(f.schema, v));
        }, VALUE_EXAMPLES);
        if (failure) failures.push(`${field}: ${failure}`);
      }
      const whole = await property(junkValue, async (v) => {
        const res = await callRoute(w, r, { key: keyFor(r), pathValues: own, body: v });
        return judge(res, "body", violates(r.body!, v));
      }, VALUE_EXAMPLES);
      if (whole) failures.push(`whole body: ${whole}`);
      expect(failures).toEqual([]);
      await stillHealthy();
    });

    it(`${id}: malformed JSON and wrong content types give a 4xx with the error body`, async () => {
      const r = route(id);
      const own = ownedPathValues(r, w.a);
      const failures: string[] = [];
      for (const raw of MALFORMED_JSON) {
        const res = await callRoute(w, r, { key: keyFor(r), pathValues: own, rawBody: raw, headers: { "content-type": "application/json" } });
        const why = judge(res, "body", !["null", "[]", '"just a string"', "42"].includes(raw) || violates(r.body!, JSON.parse(raw)));
        if (why) failures.push(`${showValue(raw)}: ${why}`);
      }
      for (const type of WRONG_CONTENT_TYPES) {
        const res = await callRoute(w, r, { key: keyFor(r), pathValues: own, rawBody: JSON.stringify(r.policy?.body?.(w) ?? {}), headers: { "content-type": type } });
        if (res.status < 400 || res.status >= 500 || errorBodyProblem(res)) failures.push(`content-type ${type}: ${res.status} ${res.text.slice(0, 200)}`);
      }
      expect(failures).toEqual([]);
      await stillHealthy();
    });
  }

  it("still answers normally afterwards: health, readiness and a full read", async () => {
    expect((await w.call("GET", "/healthz")).status).toBe(200);
    expect((await w.call("GET", "/readyz")).status).toBe(200);
    const res = await w.call("GET", `/v1/captures/${w.b.ids.cap}/records?limit=1000`, { key: w.b.adminKey });
    expect(res.status).toBe(200);
    expect(res.body.items).toHaveLength(20);
  });
});
