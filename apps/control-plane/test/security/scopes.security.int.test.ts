/**
 * Scopes, for every documented route: the route-policies table says which scope each
 * route needs; a key holding every tenant scope but that one gets 403 (before any
 * lookup, so it learns nothing about ids), a key holding only that scope does not,
 * and operator routes refuse admin keys. Routes missing from the table fail here.
 */
import { TENANT_SCOPES, type Scope } from "@hdrcap/api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeCall, errorBodyProblem } from "./assertions.ts";
import { callRoute, documentedRoutes, idPrefixOf, undeclared, type Route } from "./routes.ts";
import { createWorld, type World } from "./world.ts";

let w: World;
let routes: Route[];
const keys = { without: new Map<Scope, string>(), only: new Map<Scope, string>() };

async function mintKey(scopes: Scope[]): Promise<string> {
  const res = await w.call("POST", "/v1/api-keys", { key: w.a.adminKey, body: { name: `only ${scopes.join(" ")}`, scopes } });
  if (res.status !== 201) throw new Error(`key: ${res.status} ${res.text}`);
  return res.body.key;
}

beforeAll(async () => {
  w = await createWorld();
  routes = await documentedRoutes(w);
  for (const scope of TENANT_SCOPES) {
    keys.without.set(scope, await mintKey(TENANT_SCOPES.filter((s) => s !== scope && s !== "admin")));
    keys.only.set(scope, await mintKey([scope]));
  }
});
afterAll(async () => w?.close());

const scoped = () => routes.filter((r) => r.policy && "scope" in r.policy.access);
const scopeOf = (r: Route) => (r.policy!.access as { scope: Scope }).scope;
/** Ids of A's own objects: a 403 must come before the lookup, so real ids are used. */
const ownIds = (r: Route) => Object.fromEntries(r.pathParams.map((p) => [p.name, w.a.ids[idPrefixOf(p) ?? ""] ?? "x"]));
/** Ids of the right kind that exist nowhere, so granted calls change nothing (404 proves the scope check passed). */
const ghostIds = (r: Route) => Object.fromEntries(r.pathParams.map((p) => [p.name, `${idPrefixOf(p) ?? "x"}_Ghost0000000000000000`]));

describe("scopes per route", () => {
  it("declares the access of every route /openapi.json lists (add new routes to route-policies.ts)", () => {
    expect(routes.length).toBeGreaterThan(15);
    expect(undeclared(routes)).toEqual([]);
  });

  it("documents the bearer requirement exactly on the routes that need an API key", async () => {
    const doc = (await w.call("GET", "/openapi.json")).body;
    const wrong = routes.filter((r) => r.policy).filter((r) => {
      const documented = (doc.paths[r.path][r.method.toLowerCase()].security ?? []).some((s: Record<string, unknown>) => "Bearer" in s);
      return documented !== !("public" in r.policy!.access);
    });
    expect(wrong.map((r) => r.id)).toEqual([]);
  });

  it("refuses every keyed route without an API key (401), whatever else is wrong with the request", async () => {
    const failures: string[] = [];
    for (const route of routes.filter((r) => r.policy && !("public" in r.policy.access) && r.path.startsWith("/v1/"))) {
      const res = await callRoute(w, route, { pathValues: ownIds(route) });
      if (res.status !== 401 || errorBodyProblem(res)) failures.push(describeCall(route.id, res));
    }
    expect(failures).toEqual([]);
  });

  it("answers 403 to a key holding every tenant scope except the required one", async () => {
    const failures: string[] = [];
    for (const route of scoped()) {
      const scope = scopeOf(route);
      const key = scope === "operator" ? keys.only.get("admin")! : keys.without.get(scope)!;
      for (const pathValues of [ownIds(route), ghostIds(route)]) {
        const res = await callRoute(w, route, { key, pathValues });
        if (res.status !== 403 || res.body?.error?.code !== "FORBIDDEN" || errorBodyProblem(res)) failures.push(`${scope}: ${describeCall(route.id, res)}`);
      }
    }
    expect(failures).toEqual([]);
  });

  it("does not answer 403 to a key holding just the required scope (or admin, for tenant scopes)", async () => {
    const failures: string[] = [];
    for (const route of scoped()) {
      const scope = scopeOf(route);
      const granted = scope === "operator" ? [w.operatorKey] : [keys.only.get(scope)!, keys.only.get("admin")!];
      for (const key of granted) {
        const res = await callRoute(w, route, { key, pathValues: ghostIds(route) });
        const expected = route.pathParams.length ? [404] : [200, 201];
        if (!expected.includes(res.status)) failures.push(`${scope}: ${describeCall(route.id, res)}`);
      }
    }
    expect(failures).toEqual([]);
  });

  it("keeps operator routes from tenant admins, including the operator scope itself", async () => {
    const operatorRoutes = scoped().filter((r) => scopeOf(r) === "operator");
    expect(operatorRoutes.length).toBeGreaterThan(0);
    for (const route of operatorRoutes) {
      for (const key of [w.a.adminKey, w.b.adminKey]) {
        const res = await callRoute(w, route, { key, pathValues: ownIds(route) });
        expect(res.status, describeCall(route.id, res)).toBe(403);
      }
    }
    const escalate = await w.call("POST", "/v1/api-keys", { key: w.a.adminKey, body: { name: "up", scopes: ["operator"] } });
    expect(escalate.status).toBe(403);
  });

  it("lets any valid key call the any-key routes, and public routes need no API key", async () => {
    for (const route of routes.filter((r) => r.policy && "anyKey" in r.policy.access)) {
      for (const key of keys.only.values()) expect((await callRoute(w, route, { key })).status, route.id).toBe(200);
    }
    for (const route of routes.filter((r) => r.policy && "public" in r.policy.access)) {
      const res = await callRoute(w, route, { pathValues: ghostIds(route) });
      // No API key is asked for: a public route answers with its own verdict (which may be 401 for a bad signature or token).
      expect(res.body?.error?.message ?? "", route.id).not.toMatch(/API key/);
      expect(res.status, describeCall(route.id, res)).toBeLessThan(500);
    }
  });
});
