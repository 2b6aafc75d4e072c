/**
 * The security suites' guarantees, for every tRPC procedure (/trpc/<path>), as the
 * route-driven suites give them for every REST route: the procedure table declares
 * each one's scope (a procedure missing from it fails here); a key without the scope
 * gets FORBIDDEN before any lookup; tenant A and the operator get NOT_FOUND for each
 * of B's objects and change nothing; and hostile input in any field is a BAD_REQUEST
 * naming that field, never INTERNAL_SERVER_ERROR.
 */
import { TENANT_SCOPES, type Scope } from "@hdrcap/api";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bodyFieldPaths, fieldToName, firstFailure, junkValue, MALFORMED_JSON, showValue, VALUE_EXAMPLES, withField } from "./junk.ts";
import {
  callProcedure,
  describeProcedureCall,
  ghostOwner,
  namesObjects,
  routerProcedures,
  trpcError,
  trpcErrorProblem,
  trpcNamesField,
  undeclaredProcedures,
  type Owner,
  type Procedure,
} from "./trpc-procedures.ts";
import { createWorld, settledTenantSnapshot, type Reply, type World } from "./world.ts";

/** fast-check runs per input field; whole-input cases run once each. */
const RUNS = 20;

let w: World;
const keys = { without: new Map<Scope, string>(), only: new Map<Scope, string>() };

// Reads before writes before removals, so a removal does not take what later procedures use.
const rank = (p: Procedure) => (p.type === "query" ? 0 : p.policy?.destructive ? 2 : 1);
const procedures = routerProcedures().sort((x, y) => rank(x) - rank(y));
const declared = () => procedures.filter((p) => p.policy);
const scoped = () => declared().filter((p) => "scope" in p.policy!.access);
const scopeOf = (p: Procedure) => (p.policy!.access as { scope: Scope }).scope;

async function mintKey(scopes: Scope[]): Promise<string> {
  const res = await w.call("POST", "/v1/api-keys", { key: w.a.adminKey, body: { name: `trpc only ${scopes.join(" ")}`, scopes } });
  if (res.status !== 201) throw new Error(`key: ${res.status} ${res.text}`);
  return res.body.key;
}

beforeAll(async () => {
  w = await createWorld();
  for (const scope of TENANT_SCOPES) {
    keys.without.set(scope, await mintKey(TENANT_SCOPES.filter((s) => s !== scope && s !== "admin")));
    keys.only.set(scope, await mintKey([scope]));
  }
});
afterAll(async () => w?.close());

/** The key that passes the procedure's scope check, so the input (not the scope) decides the answer. */
const keyFor = (p: Procedure) => ("scope" in p.policy!.access && p.policy!.access.scope === "operator" ? w.operatorKey : w.a.adminKey);
/** A's own objects, except for procedures that would change or remove them: those get ghosts. */
const safeOwner = (p: Procedure): Owner => (p.policy?.destructive ? ghostOwner(w.a) : w.a);
const validInput = (p: Procedure, owner: Owner) => p.policy?.input?.(w, owner);

describe("tRPC procedures: the table", () => {
  it("declares the access of every procedure appRouter has, and nothing it lacks (add new procedures to trpc-procedures.ts)", () => {
    expect(undeclaredProcedures(procedures)).toEqual({ missing: [], stale: [] });
    expect(procedures.length).toBeGreaterThan(25);
  });

  it("gives every procedure that takes input a valid one (the attacks below start from it)", async () => {
    const failures: string[] = [];
    for (const p of declared().filter((x) => x.parser)) {
      const input = validInput(p, safeOwner(p));
      const parsed = p.parser!.safeParse(input);
      if (!parsed.success) failures.push(`${p.path}: ${JSON.stringify(input)} → ${parsed.error.message}`);
    }
    expect(failures).toEqual([]);
  });
});

describe("tRPC procedures: scopes", () => {
  it("refuses every procedure without an API key (UNAUTHORIZED), whatever the input", async () => {
    const failures: string[] = [];
    for (const p of declared()) {
      for (const input of [validInput(p, w.a), "' or 1=1 --"]) {
        const res = await callProcedure(w, p, { input: p.parser ? input : undefined });
        const { code, apiCode } = trpcError(res);
        // Text Postgres cannot store is refused (400) before authentication, as in REST; nothing else may pass.
        if (res.status !== 401 || code !== "UNAUTHORIZED" || apiCode !== "UNAUTHORIZED" || trpcErrorProblem(res)) {
          if (!(res.status === 400 && typeof input === "string")) failures.push(describeProcedureCall(p.path, res));
        }
      }
    }
    expect(failures).toEqual([]);
  });

  it("answers FORBIDDEN to a key holding every tenant scope except the required one, before any lookup", async () => {
    const failures: string[] = [];
    for (const p of scoped()) {
      const scope = scopeOf(p);
      const key = scope === "operator" ? keys.only.get("admin")! : keys.without.get(scope)!;
      for (const owner of [w.a, ghostOwner(w.a)]) {
        const res = await callProcedure(w, p, { key, input: validInput(p, owner) });
        const { code, apiCode } = trpcError(res);
        if (res.status !== 403 || code !== "FORBIDDEN" || apiCode !== "FORBIDDEN" || trpcErrorProblem(res)) failures.push(`${scope}: ${describeProcedureCall(p.path, res)}`);
      }
    }
    expect(failures).toEqual([]);
  });

  it("does not answer FORBIDDEN to a key holding just the required scope (or admin, for tenant scopes)", async () => {
    const failures: string[] = [];
    for (const p of scoped()) {
      const scope = scopeOf(p);
      const granted = scope === "operator" ? [w.operatorKey] : [keys.only.get(scope)!, keys.only.get("admin")!];
      for (const key of granted) {
        // Ghost ids: the call changes nothing, and NOT_FOUND proves the scope check passed.
        const res = await callProcedure(w, p, { key, input: validInput(p, ghostOwner(w.a)) });
        const expected = namesObjects(w, p) ? [404] : [200];
        if (!expected.includes(res.status) || (res.status >= 400 && trpcErrorProblem(res))) failures.push(`${scope}: ${describeProcedureCall(p.path, res)}`);
      }
    }
    expect(failures).toEqual([]);
  });

  it("keeps operator procedures from tenant admins", async () => {
    const operatorOnly = scoped().filter((p) => scopeOf(p) === "operator");
    expect(operatorOnly.length).toBeGreaterThan(0);
    for (const p of operatorOnly) {
      for (const key of [w.a.adminKey, w.b.adminKey]) {
        const res = await callProcedure(w, p, { key, input: validInput(p, w.a) });
        expect(res.status, describeProcedureCall(p.path, res)).toBe(403);
      }
    }
    const escalate = await callProcedure(w, procedures.find((p) => p.path === "apiKeys.create")!, { key: w.a.adminKey, input: { name: "up", scopes: ["operator"] } });
    expect(escalate.status).toBe(403);
  });

  it("lets any valid key call the any-key procedures", async () => {
    for (const p of declared().filter((x) => "anyKey" in x.policy!.access)) {
      for (const key of keys.only.values()) expect((await callProcedure(w, p, { key, input: validInput(p, w.a) })).status, p.path).toBe(200);
    }
  });
});

describe("tRPC procedures: tenant isolation", () => {
  it("names an object in some procedure of every kind B owns (the isolation check covers them all)", () => {
    const named = new Set(declared().flatMap((p) => Object.entries(w.b.ids).filter(([, id]) => JSON.stringify(validInput(p, w.b) ?? null).includes(id)).map(([prefix]) => prefix)));
    expect([...Object.keys(w.b.ids)].filter((prefix) => !named.has(prefix))).toEqual([]);
  });

  it("answers NOT_FOUND to tenant A and to the operator for each of B's objects, leaks nothing, and B's data is unchanged", async () => {
    const before = await settledTenantSnapshot(w, w.b.tenantId);
    const failures: string[] = [];
    const targeted = declared().filter((p) => namesObjects(w, p));
    expect(targeted.length).toBeGreaterThanOrEqual(15);
    for (const p of targeted) {
      const input = validInput(p, w.b);
      for (const [who, key] of [
        ["tenant A", w.a.adminKey],
        ["the operator", w.operatorKey],
      ] as const) {
        const res = await callProcedure(w, p, { key, input });
        const { code, apiCode } = trpcError(res);
        if (res.status !== 404 || code !== "NOT_FOUND" || apiCode !== "NOT_FOUND" || trpcErrorProblem(res)) failures.push(`${who}: ${describeProcedureCall(p.path, res)}`);
        const sent = JSON.stringify(input);
        // The NOT_FOUND may repeat an id A sent, but nothing else of B's.
        for (const f of w.b.fingerprints.slice(1)) if (!sent.includes(f) && res.text.includes(f)) failures.push(`${who}: ${p.path} leaked ${f}`);
      }
    }
    expect(failures).toEqual([]);
    expect(await settledTenantSnapshot(w, w.b.tenantId)).toBe(before);
    const bCapture = procedures.find((p) => p.path === "captures.get")!;
    expect((await callProcedure(w, bCapture, { key: w.b.adminKey, input: { id: w.b.ids.cap } })).status).toBe(200);
  });

  it("never shows B's objects in anything A can read through a query", async () => {
    const leaks: string[] = [];
    let seenOwn = 0;
    for (const p of declared().filter((x) => x.type === "query")) {
      const base = validInput(p, w.a) as Record<string, unknown> | undefined;
      const variants = [base, ...(base && "limit" in base ? [{ ...base, limit: 1000 }] : []), ...(p.path === "captures.records" ? [{ ...base, agent: w.b.ids.agt }] : [])];
      for (const input of variants) {
        const res = await callProcedure(w, p, { key: w.a.adminKey, input });
        if (res.status >= 500) leaks.push(describeProcedureCall(`${p.path} ${JSON.stringify(input)}`, res));
        for (const f of w.b.fingerprints) if (res.text.includes(f)) leaks.push(`${p.path} ${JSON.stringify(input)} shows B's ${f}`);
        if (res.text.includes(w.a.fingerprints[0]!) || Object.values(w.a.ids).some((id) => res.text.includes(id))) seenOwn++;
      }
    }
    expect(leaks).toEqual([]);
    expect(seenOwn, "A sees its own objects, so the leak check is not vacuous").toBeGreaterThan(5);
  });
});

describe("tRPC procedures: bad input never gives INTERNAL_SERVER_ERROR", () => {
  /** Why this answer to an input that broke `field` is unacceptable (undefined when it is fine). */
  function judge(res: Reply, field: string, mustReject: boolean): string | undefined {
    const { code } = trpcError(res);
    if (res.status >= 500 || code === "INTERNAL_SERVER_ERROR") return `server error ${res.status}: ${res.text.slice(0, 300)}`;
    if (res.status >= 400) {
      const problem = trpcErrorProblem(res);
      if (problem) return problem;
      if (code === "BAD_REQUEST" && !trpcNamesField(res, field)) return `BAD_REQUEST whose issues do not name ${field}: ${JSON.stringify(trpcError(res).issues).slice(0, 300)}`;
    } else if (mustReject) return `accepted (${res.status}) an input its own parser refuses at ${field}`;
    if (mustReject && code !== "BAD_REQUEST") return `expected BAD_REQUEST naming ${field}, got ${res.status} ${code}: ${res.text.slice(0, 200)}`;
    return undefined;
  }

  const property = <T,>(arb: fc.Arbitrary<T>, check: (v: T) => Promise<string | undefined>, examples: T[] = []) => firstFailure(arb, check, RUNS, examples);

  for (const p of procedures.filter((x) => x.parser)) {
    it(`${p.path}: junk in each input field is a BAD_REQUEST naming it (or an ordinary 4xx), never INTERNAL_SERVER_ERROR`, async () => {
      const failures: string[] = [];
      const owner = safeOwner(p);
      for (const f of bodyFieldPaths(p.input!)) {
        const failure = await property(junkValue, async (v) => {
          const base = validInput(p, owner) ?? {};
          const input = withField(base, f.path, v);
          const res = await callProcedure(w, p, { key: keyFor(p), input });
          return judge(res, ["input", ...fieldToName(base, f.path)].join("."), !p.parser!.safeParse(input).success);
        }, VALUE_EXAMPLES);
        if (failure) failures.push(`input.${f.path.join(".")}: ${failure}`);
      }
      const whole = await property(junkValue, async (v) => {
        const res = await callProcedure(w, p, { key: keyFor(p), input: v });
        return judge(res, "input", !p.parser!.safeParse(v).success);
      }, VALUE_EXAMPLES);
      if (whole) failures.push(`whole input: ${whole}`);
      expect(failures).toEqual([]);
      expect((await callProcedure(w, procedures.find((x) => x.path === "whoami")!, { key: w.a.adminKey })).status, "still answers normally").toBe(200);
    });

    it(`${p.path}: malformed JSON is a 4xx tRPC error, never INTERNAL_SERVER_ERROR`, async () => {
      const failures: string[] = [];
      for (const raw of MALFORMED_JSON) {
        const res = await callProcedure(w, p, { key: keyFor(p), rawInput: raw });
        const { code } = trpcError(res);
        if (res.status >= 500 || code === "INTERNAL_SERVER_ERROR" || res.status < 400 || trpcErrorProblem(res)) failures.push(`${showValue(raw)}: ${describeProcedureCall(p.path, res)}`);
      }
      expect(failures).toEqual([]);
    });
  }

  it("still answers normally afterwards: a full read of B's records", async () => {
    const records = procedures.find((p) => p.path === "captures.records")!;
    const res = await callProcedure(w, records, { key: w.b.adminKey, input: { id: w.b.ids.cap, limit: 1000 } });
    expect(res.status).toBe(200);
    expect(res.body.result.data.items).toHaveLength(20);
  });
});
