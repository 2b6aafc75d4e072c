/**
 * What of a header block may leave the agent: an optional allowlist of header
 * names, and redaction (mask, drop or keyed hash) of credentials: the default
 * sensitive headers, names the job adds, and sensitive query parameters of
 * the request target. Applied to every record before it is published.
 */
import { createHmac, randomBytes } from "node:crypto";
import type { HeaderField } from "@hdrcap/api/records";

export type RedactMode = "mask" | "drop" | "hash";

export interface HeaderPolicyOptions {
  /** Allowlist of header names (case-insensitive); absent means every header. */
  include?: readonly string[];
  /** More header names to redact (case-insensitive), on top of the defaults. */
  redact?: readonly string[];
  redactMode: RedactMode;
  /**
   * Explicit opt-in to keep the default-sensitive headers and query
   * parameters in clear. Names listed in `redact` are still redacted.
   */
  allowSensitive?: boolean;
  /** HMAC key of "hash" mode; a random per-policy key when absent. */
  hashKey?: Buffer;
  /** Redact sensitive query parameters of request targets (default true). */
  redactQuery?: boolean;
}

export interface HeaderPolicy {
  readonly redactMode: RedactMode;
  /**
   * The fields that may leave the agent (the input array, updated in place,
   * when nothing is dropped). Names redacted are appended to `redacted`.
   */
  applyToFields(fields: HeaderField[], redacted: string[]): HeaderField[];
  /**
   * The request target with sensitive query parameter values redacted;
   * their names are appended to `redacted` prefixed with "?".
   */
  applyToTarget(target: string, redacted: string[]): string;
}

export const REDACTED_VALUE = "[REDACTED]";
export const HASH_PREFIX = "hmac-sha256:";

/** Exact names that are credentials although no word part says so. */
const SENSITIVE_HEADER_NAMES = new Set([
  "authorization",
  "proxy-authorization",
  "cookie",
  "set-cookie",
  "set-cookie2",
  "x-api-key",
  "api-key",
  "apikey",
  "x-auth-token",
  "x-access-token",
  "x-csrf-token",
  "x-xsrf-token",
  "x-amz-security-token",
  "x-goog-api-key",
]);

/** A name part equal to or ending with one of these marks a credential ("X-AccessToken"). */
const SENSITIVE_WORDS = [
  "token",
  "secret",
  "password",
  "passwd",
  "apikey",
  "credential",
  "credentials",
  "authorization",
  "cookie",
];

/** "<word> key" pairs of parts that name a key ("X-Api-Key", "x_private_key"). */
const KEY_QUALIFIERS = new Set(["api", "access", "private", "auth"]);

/** Query parameters that carry credentials in URLs (presigned URLs, maps keys, OAuth). */
const SENSITIVE_QUERY_PARTS = new Set(["key", "sig", "signature", "auth", "session", "sessionid", "jwt"]);

/** Splits on separators and camelCase boundaries, lower-cased: "X-AccessToken" → x, access, token. */
function nameParts(name: string): string[] {
  const parts: string[] = [];
  let current = "";
  let previousLower = false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    const isUpper = c >= 0x41 && c <= 0x5a;
    const isLower = (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39);
    if (!isUpper && !isLower) {
      if (current !== "") parts.push(current);
      current = "";
      previousLower = false;
      continue;
    }
    if (isUpper && previousLower && current !== "") {
      parts.push(current);
      current = "";
    }
    current += name[i]!.toLowerCase();
    previousLower = isLower;
  }
  if (current !== "") parts.push(current);
  return parts;
}

function partsAreSensitive(parts: readonly string[]): boolean {
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    for (const word of SENSITIVE_WORDS) {
      if (part.endsWith(word)) return true;
    }
    if (part === "key" && i > 0 && KEY_QUALIFIERS.has(parts[i - 1]!)) return true;
  }
  return false;
}

/** Whether a header is redacted by default (case-insensitive). */
export function isSensitiveHeaderName(name: string): boolean {
  return SENSITIVE_HEADER_NAMES.has(name.toLowerCase()) || partsAreSensitive(nameParts(name));
}

/** Whether a query parameter is redacted by default. */
export function isSensitiveQueryParam(name: string): boolean {
  const parts = nameParts(name);
  if (partsAreSensitive(parts)) return true;
  for (const part of parts) if (SENSITIVE_QUERY_PARTS.has(part)) return true;
  return false;
}

const KEEP = 0;
const REDACT = 1;
const EXCLUDE = 2;
type Decision = typeof KEEP | typeof REDACT | typeof EXCLUDE;

/** Decisions are cached by exact name; a workload has few distinct names, garbage has many. */
const MAX_CACHED_NAMES = 4096;

function decodeQueryName(raw: string): string {
  if (raw.indexOf("%") < 0 && raw.indexOf("+") < 0) return raw;
  try {
    return decodeURIComponent(raw.replace(/\+/g, " "));
  } catch {
    return raw;
  }
}

export function createHeaderPolicy(options: HeaderPolicyOptions): HeaderPolicy {
  const mode = options.redactMode;
  const include = options.include ? new Set(options.include.map((n) => n.toLowerCase())) : null;
  const extra = new Set((options.redact ?? []).map((n) => n.toLowerCase()));
  const allowSensitive = options.allowSensitive === true;
  const redactQuery = options.redactQuery !== false && !allowSensitive;
  const hashKey = options.hashKey ?? randomBytes(32);
  const cache = new Map<string, Decision>();

  function decide(name: string): Decision {
    const cached = cache.get(name);
    if (cached !== undefined) return cached;
    const lower = name.toLowerCase();
    let decision: Decision = KEEP;
    if (include !== null && !include.has(lower)) decision = EXCLUDE;
    else if (extra.has(lower) || (!allowSensitive && isSensitiveHeaderName(name))) decision = REDACT;
    if (cache.size >= MAX_CACHED_NAMES) cache.clear();
    cache.set(name, decision);
    return decision;
  }

  function protect(value: string): string {
    if (mode === "mask") return REDACTED_VALUE;
    return HASH_PREFIX + createHmac("sha256", hashKey).update(value, "latin1").digest("base64url");
  }

  function note(redacted: string[], name: string): void {
    if (!redacted.includes(name)) redacted.push(name);
  }

  return {
    redactMode: mode,

    applyToFields(fields, redacted) {
      let kept: HeaderField[] | null = null;
      for (let i = 0; i < fields.length; i++) {
        const field = fields[i]!;
        const decision = decide(field.name);
        if (decision === REDACT) note(redacted, field.name);
        const removed = decision === EXCLUDE || (decision === REDACT && mode === "drop");
        if (removed) {
          if (kept === null) kept = fields.slice(0, i);
          continue;
        }
        if (decision === REDACT) field.value = protect(field.value);
        if (kept !== null) kept.push(field);
      }
      return kept ?? fields;
    },

    applyToTarget(target, redacted) {
      if (!redactQuery) return target;
      const q = target.indexOf("?");
      if (q < 0) return target;
      const params = target.slice(q + 1).split("&");
      const out: string[] = [];
      let changed = false;
      for (const param of params) {
        const eq = param.indexOf("=");
        const rawName = eq < 0 ? param : param.slice(0, eq);
        const name = decodeQueryName(rawName);
        if (name === "" || !isSensitiveQueryParam(name)) {
          out.push(param);
          continue;
        }
        changed = true;
        note(redacted, `?${name}`);
        if (mode === "drop") continue;
        out.push(`${rawName}=${protect(eq < 0 ? "" : param.slice(eq + 1))}`);
      }
      return changed ? `${target.slice(0, q)}?${out.join("&")}` : target;
    },
  };
}

