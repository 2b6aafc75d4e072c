/**
 * Tenant isolation, for every documented route: tenant A (and the operator, who is a
 * tenant too) gets 404 for each of tenant B's objects, B's rows are unchanged
 * afterwards, and nothing A can read mentions anything of B.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeCall, errorBodyProblem } from "./assertions.ts";
import { callRoute, documentedRoutes, ownedPathValues, ownedValue, type Route } from "./routes.ts";
import { createWorld, settledTenantSnapshot, type World } from "./world.ts";

let w: World;
let routes: Route[];

beforeAll(async () => {
  w = await createWorld();
  routes = await documentedRoutes(w);
});
afterAll(async () => w?.close());

const keyed = () => routes.filter((r) => r.pathParams.length > 0 && r.policy && !("public" in r.policy.access));
const readable = () => routes.filter((r) => r.method === "GET" && r.policy);

describe("tenant isolation", () => {
  it("covers every route with a path parameter, and B owns an object of every id kind they take", () => {
    const missing = routes.flatMap((r) => r.pathParams.filter((p) => ownedValue(p, w.b) === undefined).map((p) => `${r.id} {${p.name}} (${p.schema.pattern ?? "no id pattern"})`));
    expect(missing, "add a fixture object for these parameters in world.ts").toEqual([]);
    expect(keyed().length).toBeGreaterThanOrEqual(10);
  });

  it("answers 404 to tenant A and to the operator on every route for each of B's objects, and B's data is unchanged", async () => {
    const before = await settledTenantSnapshot(w, w.b.tenantId);
    const failures: string[] = [];
    for (const route of keyed()) {
      const pathValues = ownedPathValues(route, w.b);
      for (const [who, key] of [
        ["tenant A", w.a.adminKey],
        ["the operator", w.operatorKey],
      ] as const) {
        const res = await callRoute(w, route, { key, pathValues });
        const problem = res.status === 404 ? errorBodyProblem(res) : `expected 404`;
        if (problem || res.body?.error?.code !== "NOT_FOUND") failures.push(`${who}: ${describeCall(route.id, res)} (${problem ?? res.body?.error?.code})`);
        for (const f of w.b.fingerprints.slice(1)) {
          // The 404 may repeat the id A sent, but nothing else of B's.
          if (!Object.values(pathValues).includes(f) && res.text.includes(f)) failures.push(`${who}: ${route.id} leaked ${f}`);
        }
      }
    }
    expect(failures).toEqual([]);
    expect(await settledTenantSnapshot(w, w.b.tenantId)).toBe(before);
    // B's own keys still work, and B still sees its objects.
    expect((await w.call("GET", `/v1/captures/${w.b.ids.cap}`, { key: w.b.adminKey })).status).toBe(200);
    expect((await w.call("GET", `/v1/agents/${w.b.ids.agt}`, { key: w.b.adminKey })).status).toBe(200);
  });

  it("never shows B's objects in anything A can read (lists, pages, exports, stats)", async () => {
    const leaks: string[] = [];
    for (const route of readable()) {
      const pathValues = ownedPathValues(route, w.a);
      const variants: Record<string, string>[] = [{}];
      const names = new Set(route.queryParams.map((p) => p.name));
      if (names.has("format")) variants.push({ format: "ndjson" }, { format: "csv" });
      if (names.has("agent")) variants.push({ agent: w.b.ids.agt! });
      if (names.has("limit")) variants.push({ limit: "1000" });
      if (names.has("header")) variants.push({ header: "X-Owner" });
      for (const query of variants) {
        // Public routes are called with A's own credential for them (its consumer key).
        for (const key of ["public" in route.policy!.access ? undefined : w.a.adminKey]) {
          const res = await callRoute(w, route, { key, pathValues, query });
          if (res.status >= 500) leaks.push(describeCall(`${route.id} ${JSON.stringify(query)}`, res));
          for (const f of w.b.fingerprints) if (res.text.includes(f)) leaks.push(`${route.id} ${JSON.stringify(query)} shows B's ${f}`);
        }
      }
    }
    expect(leaks).toEqual([]);
  });

  it("lists A's own objects to A (the leak check above is not vacuous)", async () => {
    const ownSeen = async (path: string) => (await w.call("GET", path, { key: w.a.adminKey })).text;
    expect(await ownSeen("/v1/captures")).toContain(w.a.ids.cap);
    expect(await ownSeen("/v1/agents")).toContain(w.a.ids.agt);
    expect(await ownSeen("/v1/api-keys")).toContain(w.a.ids.key);
    expect(await ownSeen("/v1/audit")).toContain(w.a.ids.cap);
    expect(await ownSeen(`/v1/captures/${w.a.ids.cap}/records?limit=1000`)).toContain("alphaowned");
  });

  it("keeps B's records out of A's capture even when A filters by B's agent or B's header values", async () => {
    for (const q of [`agent=${w.b.ids.agt}`, `header.x-owner=${w.b.fingerprints[0]}`, `hasHeader=x-owner&pathPrefix=/${w.b.fingerprints[0]}`]) {
      const res = await w.call("GET", `/v1/captures/${w.a.ids.cap}/records?${q}`, { key: w.a.adminKey });
      expect(res.status, q).toBe(200);
      expect(res.body.items, q).toEqual([]);
    }
  });

  it("serves B's published API to none of A's credentials, and never under A's slug", async () => {
    const bApi = `/apis/${w.b.named.tenant}/${w.b.named.name}`;
    expect((await w.call("GET", bApi, { key: w.b.consumerKey })).status).toBe(200); // the check below is not vacuous
    for (const [who, key] of [
      ["A's consumer key", w.a.consumerKey],
      ["A's admin key", w.a.adminKey],
      ["the operator key", w.operatorKey],
      ["B's admin key", w.b.adminKey],
    ] as const) {
      const res = await w.call("GET", bApi, { key });
      expect(res.status, `${who}: ${describeCall(bApi, res)}`).toBe(401);
      expect(errorBodyProblem(res)).toBeUndefined();
      expect(res.text).not.toContain(w.b.fingerprints[0]);
    }
    for (const path of [`/apis/${w.a.named.tenant}/${w.b.named.name}`, `/apis/${w.a.named.tenant}/${w.b.named.name}/openapi.json`]) {
      const res = await w.call("GET", path, { key: w.a.consumerKey });
      expect(res.status, describeCall(path, res)).toBe(404);
    }
  });
});
