/**
 * Hostile input for the bad-input suite (fast-check arbitraries), and a small oracle
 * that says when a value certainly breaks a parameter's JSON Schema, so the suite can
 * demand a 400 naming that parameter (it never guesses: unsure means "may pass").
 */
import fc from "fast-check";
import type { JsonSchema } from "./routes.ts";

const SQL = [
  "' or 1=1 --",
  "'; drop table records; --",
  '"; drop table api_keys; --',
  "1; select pg_sleep(5)",
  "' union select hash, null from api_keys --",
  "%' or '%'='",
  "\\'; --",
  "$$; drop table tenants; $$",
  "') or ('1'='1",
  "cap_AAAAAAAA' or tenant_id <> '",
  "*/ or 1=1 /*",
  "admin'--",
];

const UNICODE = [
  "\u0000",
  "a\u0000b",
  "\ud800",
  "x\udfffy",
  "\udbff\ud800",
  "😀🔥👨‍👩‍👧‍👦",
  "\u202egnp.exe",
  "مرحبا بالعالم",
  "שלום",
  "\ufeff",
  "\u200b\u200c\u200d",
  "e\u0301\u0301\u0301",
  "\r\nSet-Cookie: pwned=1",
  "\u2028\u2029",
  "\\u0000",
  "%00",
  "%ZZ",
  "../../etc/passwd",
  "<script>alert(1)</script>",
  "${7*7}{{7*7}}",
];

const NUMERIC = ["-1", "0", "-0", "1e309", "-1e309", "NaN", "Infinity", "0x10", "1.5", "2147483648", "9223372036854775808", "9".repeat(400), " 1", "1 ", "", "١٢٣", "1e3"];

/** Any UTF-16 sequence, lone surrogates and NUL included. */
const codeUnits = fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 24 }).map((units) => String.fromCharCode(...units));

const huge = fc
  .tuple(fc.constantFrom("a", "é", "😀", "'", "\u0000", "%", "\ud800", "0"), fc.integer({ min: 100_001, max: 140_000 }))
  .map(([unit, n]) => unit.repeat(Math.ceil(n / unit.length)));

/** Always tried first, whatever fast-check draws: the cases that broke the API before. */
export const STRING_EXAMPLES: string[] = ["\u0000", "a\u0000b", "' or 1=1 --", "\ud800", "😀", "\u202e", "a".repeat(100_001), "-1", "1e309", ""];
export const VALUE_EXAMPLES: unknown[] = [...STRING_EXAMPLES, null, [], {}, true, 1e308, -1, 0.5, [["\u0000"]], { "\u0000": "\u0000" }];

/** Hostile strings: SQL, unicode edge cases, numeric-looking, huge, random. */
export const junkString: fc.Arbitrary<string> = fc.oneof(
  { arbitrary: fc.constantFrom(...SQL), weight: 3 },
  { arbitrary: fc.constantFrom(...UNICODE), weight: 3 },
  { arbitrary: fc.constantFrom(...NUMERIC), weight: 2 },
  { arbitrary: huge, weight: 1 },
  { arbitrary: codeUnits, weight: 2 },
  { arbitrary: fc.string({ maxLength: 40 }), weight: 1 },
  { arbitrary: fc.tuple(fc.constantFrom(...SQL), codeUnits).map(([a, b]) => a + b), weight: 1 },
);

const junkNumber = fc.oneof(
  fc.constantFrom(-1, 0, -0, 0.5, 2 ** 31, 2 ** 53 + 2, 1e308, -1e308, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 65536, 1e21),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.integer(),
);

const deepNest = fc.integer({ min: 20, max: 2000 }).map((depth) => {
  let v: unknown = "bottom";
  for (let i = 0; i < depth; i++) v = i % 2 ? [v] : { a: v };
  return v;
});

/** Hostile JSON values: strings above plus numbers out of range, wrong types and nested junk. */
export const junkValue: fc.Arbitrary<unknown> = fc.oneof(
  { arbitrary: junkString, weight: 4 },
  { arbitrary: junkNumber, weight: 2 },
  { arbitrary: fc.constantFrom(null, true, false, [], {}, [null], { $gt: "" }, JSON.parse('{"__proto__":{"admin":true}}'), ["' or 1=1 --"], [1, "a", null]), weight: 2 },
  { arbitrary: fc.jsonValue({ maxDepth: 4 }), weight: 2 },
  { arbitrary: deepNest, weight: 1 },
  { arbitrary: fc.array(junkString, { maxLength: 5 }), weight: 1 },
  { arbitrary: fc.dictionary(junkString.filter((k) => k.length < 100), junkString, { maxKeys: 4 }), weight: 1 },
);

/** Bodies that are not JSON at all, or not the JSON the route takes. */
export const MALFORMED_JSON = ["{", '{"name":', "nul", "[1,2", "{'a':1}", '{"a":1}}', "", " ", "\u0000", "NaN", '{"a":1,}', "[".repeat(100_000), '"just a string"', "42", "null", "[]"];

export const WRONG_CONTENT_TYPES = ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml", "application/octet-stream", "text/json"];

function types(schema: JsonSchema): string[] | undefined {
  if (schema.type === undefined) return undefined;
  return Array.isArray(schema.type) ? schema.type : [schema.type];
}

const matchesType = (t: string, v: unknown) =>
  (t === "string" && typeof v === "string") ||
  (t === "number" && typeof v === "number" && Number.isFinite(v)) ||
  (t === "integer" && typeof v === "number" && Number.isInteger(v)) ||
  (t === "boolean" && typeof v === "boolean") ||
  (t === "null" && v === null) ||
  (t === "array" && Array.isArray(v)) ||
  (t === "object" && typeof v === "object" && v !== null && !Array.isArray(v));

/** True when `value` (a JSON value) certainly violates `schema`; false when unsure. */
export function violates(schema: JsonSchema, value: unknown): boolean {
  if (!schema || typeof schema !== "object") return false;
  if (schema.anyOf || schema.oneOf || schema.allOf) return false;
  const ts = types(schema);
  if (ts && !ts.some((t) => matchesType(t, value))) return true;
  if (schema.enum && !schema.enum.includes(value)) return true;
  if (typeof value === "string") {
    if (schema.maxLength !== undefined && value.length > schema.maxLength) return true;
    if (schema.minLength !== undefined && value.length < schema.minLength) return true;
    if (schema.pattern && !new RegExp(schema.pattern).test(value)) return true;
  }
  if (typeof value === "number") {
    if (schema.minimum !== undefined && value < schema.minimum) return true;
    if (schema.maximum !== undefined && value > schema.maximum) return true;
  }
  if (Array.isArray(value)) {
    if (schema.maxItems !== undefined && value.length > schema.maxItems) return true;
    if (schema.minItems !== undefined && value.length < schema.minItems) return true;
    if (schema.items && value.some((item) => violates(schema.items, item))) return true;
  }
  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    const obj = value as Record<string, unknown>;
    const props: Record<string, JsonSchema> = schema.properties ?? {};
    for (const r of schema.required ?? []) if (!(r in obj)) return true;
    for (const [k, v] of Object.entries(obj)) {
      if (props[k]) {
        if (violates(props[k]!, v)) return true;
      } else if (schema.additionalProperties === false) return true;
      else if (typeof schema.additionalProperties === "object" && violates(schema.additionalProperties, v)) return true;
      if (schema.propertyNames && violates(schema.propertyNames, k)) return true;
    }
  }
  return false;
}

/** For a query or path parameter: what the server sees is a string, coerced where the schema says number. */
export function queryValueViolates(schema: JsonSchema, raw: string): boolean {
  // Lone surrogates travel as bytes that are not UTF-8; the server keeps them percent-encoded, which may well be valid.
  if (/[\uD800-\uDFFF]/.test(raw.replace(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g, ""))) return false;
  const ts = types(schema);
  if (ts && (ts.includes("integer") || ts.includes("number"))) {
    const n = Number(raw);
    return violates(schema, Number.isFinite(n) ? n : Number.NaN);
  }
  if (ts?.includes("boolean")) return false;
  return violates(schema, raw);
}

/** The dotted paths of a body schema's fields worth attacking: each property, one level of nesting, and first array items. */
export function bodyFieldPaths(schema: JsonSchema, prefix: string[] = [], depth = 0): { path: string[]; schema: JsonSchema }[] {
  const out: { path: string[]; schema: JsonSchema }[] = [];
  for (const [name, sub] of Object.entries<JsonSchema>(schema.properties ?? {})) {
    const path = [...prefix, name];
    out.push({ path, schema: sub });
    if (depth < 1 && sub.properties) out.push(...bodyFieldPaths(sub, path, depth + 1));
    if (sub.items && typeof sub.items === "object") out.push({ path: [...path, "0"], schema: sub.items });
  }
  return out;
}

/** A copy of `body` with the field at `path` set to `value` (parents created as needed). */
export function withField(body: unknown, path: string[], value: unknown): unknown {
  const copy = structuredClone(body ?? {}) as Record<string, any>;
  let node: Record<string, any> = copy;
  for (const [i, k] of path.slice(0, -1).entries()) {
    const nextIsIndex = /^\d+$/.test(path[i + 1]!);
    if (typeof node[k] !== "object" || node[k] === null) node[k] = nextIsIndex ? [] : {};
    node = node[k];
  }
  node[path[path.length - 1]!] = value;
  return copy;
}

/**
 * The field an error about `path` must name: the path itself, or, when `withField` had to
 * create a parent the valid body lacks, that parent (its other required fields are missing too).
 */
export function fieldToName(body: unknown, path: string[]): string[] {
  let node: any = body;
  for (const [i, k] of path.entries()) {
    if (node === null || typeof node !== "object" || !(k in node)) return path.slice(0, i + 1);
    node = node[k];
  }
  return path;
}

/** A value as a failure message shows it: JSON, cut at 120 characters. */
export function showValue(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 120 ? `${s.slice(0, 120)}… (${s.length} chars)` : s;
}

/** Runs `check` over `runs` values of `arb` (examples first); the first failure, with its counterexample, or undefined. */
export async function firstFailure<T>(arb: fc.Arbitrary<T>, check: (v: T) => Promise<string | undefined>, runs: number, examples: T[] = []): Promise<string | undefined> {
  const details = await fc.check(fc.asyncProperty(arb, async (v) => (await check(v)) === undefined), { numRuns: runs, examples: examples.map((e) => [e] as [T]) });
  if (!details.failed || !details.counterexample) return undefined;
  const [example] = details.counterexample;
  return `${(await check(example)) ?? "flaky"} — counterexample ${showValue(example)}`;
}
