/**
 * The route list the security suites iterate, read from the served /openapi.json (so
 * routes added later are attacked without touching the suites), joined with the
 * policy table. $refs are resolved, so each parameter and body carries its JSON Schema.
 */
import { ROUTE_POLICIES, type RoutePolicy } from "./route-policies.ts";
import type { World } from "./world.ts";

export type JsonSchema = Record<string, any>;

export interface Param {
  name: string;
  in: "path" | "query" | "header";
  required: boolean;
  schema: JsonSchema;
}

export interface Route {
  /** "POST /v1/captures/{id}/stop", as the policy table spells it. */
  id: string;
  method: string;
  path: string;
  params: Param[];
  pathParams: Param[];
  queryParams: Param[];
  /** The JSON body schema, when the route takes one. */
  body: JsonSchema | undefined;
  bodyRequired: boolean;
  policy: RoutePolicy | undefined;
}

function resolve(doc: any, node: any, seen = new Set<string>()): any {
  if (Array.isArray(node)) return node.map((n) => resolve(doc, n, seen));
  if (!node || typeof node !== "object") return node;
  if (typeof node.$ref === "string") {
    if (seen.has(node.$ref)) return {};
    const target = node.$ref.replace(/^#\//, "").split("/").reduce((o: any, k: string) => o?.[k], doc);
    return resolve(doc, target, new Set([...seen, node.$ref]));
  }
  return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, resolve(doc, v, seen)]));
}

export async function documentedRoutes(w: World): Promise<Route[]> {
  const res = await w.call("GET", "/openapi.json");
  if (res.status !== 200) throw new Error(`GET /openapi.json: ${res.status}`);
  const doc = res.body;
  const routes: Route[] = [];
  for (const [path, ops] of Object.entries<Record<string, any>>(doc.paths)) {
    for (const [method, rawOp] of Object.entries(ops)) {
      if (!["get", "post", "put", "patch", "delete"].includes(method)) continue;
      const op = resolve(doc, rawOp);
      const params: Param[] = (op.parameters ?? []).map((p: any) => ({ name: p.name, in: p.in, required: !!p.required, schema: p.schema ?? {} }));
      const id = `${method.toUpperCase()} ${path}`;
      routes.push({
        id,
        method: method.toUpperCase(),
        path,
        params,
        pathParams: params.filter((p) => p.in === "path"),
        queryParams: params.filter((p) => p.in === "query"),
        body: op.requestBody?.content?.["application/json"]?.schema,
        bodyRequired: !!op.requestBody?.required,
        policy: ROUTE_POLICIES[id],
      });
    }
  }
  return routes;
}

/** The id prefix a path parameter takes ("cap" for ^cap_[A-Za-z0-9]{8,40}$), if it is an id. */
export function idPrefixOf(p: Param): string | undefined {
  return /^\^([a-z]+)_/.exec(p.schema.pattern ?? "")?.[1];
}

/** The route's path with each parameter replaced (values are URL-encoded here). */
export function fillPath(route: Route, values: Record<string, string>): string {
  return route.path.replace(/\{([^}]+)\}/g, (_m, name: string) => {
    const v = values[name];
    if (v === undefined) throw new Error(`${route.id}: no value for path parameter ${name}`);
    return encodeComponent(v);
  });
}

/**
 * encodeURIComponent, except that lone surrogates (which it refuses) are sent as the
 * bytes a careless client would produce (WTF-8), and "." / ".." segments are escaped
 * so the URL parser does not fold them away.
 */
export function encodeComponent(v: string): string {
  let out = "";
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    const isHigh = c >= 0xd800 && c <= 0xdbff;
    const isLow = c >= 0xdc00 && c <= 0xdfff;
    if (isHigh && i + 1 < v.length && v.charCodeAt(i + 1) >= 0xdc00 && v.charCodeAt(i + 1) <= 0xdfff) {
      out += encodeURIComponent(v.slice(i, i + 2));
      i++;
    } else if (isHigh || isLow) {
      out += [0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f)].map((b) => `%${b.toString(16).toUpperCase()}`).join("");
    } else if (v[i] === ".") {
      out += "%2E";
    } else {
      out += encodeURIComponent(v[i]!);
    }
  }
  return out;
}

export function queryString(values: Record<string, string>): string {
  const parts = Object.entries(values).map(([k, v]) => `${encodeComponent(k)}=${encodeComponent(v)}`);
  return parts.length ? `?${parts.join("&")}` : "";
}

/** Calls the route with a valid body (from the policy table) unless one is given. */
export function callRoute(
  w: World,
  route: Route,
  opts: { key?: string; pathValues?: Record<string, string>; query?: Record<string, string>; body?: unknown; rawBody?: string; headers?: Record<string, string> },
) {
  const body = opts.rawBody !== undefined ? undefined : opts.body !== undefined ? opts.body : route.body ? (route.policy?.body?.(w) ?? {}) : undefined;
  const key = opts.key ?? route.policy?.credential?.(w);
  return w.call(route.method, fillPath(route, opts.pathValues ?? {}) + queryString(opts.query ?? {}), { key, body, rawBody: opts.rawBody, headers: opts.headers });
}

/** Routes /openapi.json lists that the policy table does not declare. */
export function undeclared(routes: Route[]): string[] {
  return routes.filter((r) => !r.policy).map((r) => r.id);
}

/** The value of one path parameter naming an object of `owner`: by id prefix, else by parameter name. */
export function ownedValue(p: Param, owner: { ids: Record<string, string>; named: Record<string, string> }): string | undefined {
  const prefix = idPrefixOf(p);
  return prefix ? owner.ids[prefix] : owner.named[p.name];
}

/** Every path parameter of the route filled with `owner`'s objects (throws when the world lacks one). */
export function ownedPathValues(route: Route, owner: { ids: Record<string, string>; named: Record<string, string> }): Record<string, string> {
  return Object.fromEntries(
    route.pathParams.map((p) => {
      const v = ownedValue(p, owner);
      if (v === undefined) throw new Error(`${route.id}: the world has no object for {${p.name}}; add one in world.ts`);
      return [p.name, v];
    }),
  );
}
