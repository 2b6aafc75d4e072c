/** Checks the security suites share: the one error body, and where a 400 points. */
import { ERROR_CODES } from "@hdrcap/api";
import type { Reply } from "./world.ts";

/** Why this reply is not a well-formed error body of its status, or undefined when it is. */
export function errorBodyProblem(res: Reply): string | undefined {
  const e = res.body?.error;
  if (!e || typeof e !== "object") return `status ${res.status} without an error body: ${res.text.slice(0, 200)}`;
  if (!(ERROR_CODES as readonly string[]).includes(e.code)) return `unknown error code ${e.code}`;
  if (typeof e.message !== "string" || e.message.length === 0) return "error without a message";
  if (typeof e.requestId !== "string" || e.requestId.length === 0) return "error without a requestId";
  if (res.headers.get("x-request-id") !== e.requestId) return "error requestId differs from X-Request-Id";
  if (!res.headers.get("content-type")?.startsWith("application/json")) return `error served as ${res.headers.get("content-type")}`;
  if (res.status === 400) {
    if (!Array.isArray(e.issues) || e.issues.length === 0) return "400 without issues";
    for (const i of e.issues) if (typeof i?.path !== "string" || typeof i?.message !== "string") return `malformed issue ${JSON.stringify(i)}`;
  }
  return undefined;
}

/** Whether some issue of a 400 names the field (`query.limit`, `body.filter.ports.0`, …). */
export function namesField(res: Reply, field: string): boolean {
  return (res.body?.error?.issues ?? []).some((i: { path: string }) => i.path === field || i.path.startsWith(`${field}.`));
}

/** A short description of a request and its answer, for assertion messages. */
export function describeCall(what: string, res: Reply): string {
  return `${what} → ${res.status} ${res.text.slice(0, 300)}`;
}
