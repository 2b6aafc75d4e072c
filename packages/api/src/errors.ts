/**
 * The one error model of the public API. Services throw ApiError; the REST and
 * tRPC adapters translate it at the edge. Body: { error: { code, message, requestId, issues? } }.
 */
import { z } from "@hono/zod-openapi";

export const ERROR_CODES = [
  "BAD_REQUEST",
  "UNAUTHORIZED",
  "FORBIDDEN",
  "NOT_FOUND",
  "METHOD_NOT_ALLOWED",
  "CONFLICT",
  "GONE",
  "PAYLOAD_TOO_LARGE",
  "UNSUPPORTED_MEDIA_TYPE",
  "TOO_MANY_REQUESTS",
  "INTERNAL_SERVER_ERROR",
  "UNAVAILABLE",
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export const codeToStatus = {
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  CONFLICT: 409,
  GONE: 410,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  TOO_MANY_REQUESTS: 429,
  INTERNAL_SERVER_ERROR: 500,
  UNAVAILABLE: 503,
} as const satisfies Record<ErrorCode, number>;

export interface ErrorIssue {
  /** Dotted path of the offending field, prefixed with where it came from: "body.name", "query.limit". */
  path: string;
  message: string;
}

export class ApiError extends Error {
  readonly code: ErrorCode;
  readonly issues: ErrorIssue[] | undefined;
  constructor(code: ErrorCode, message: string, issues?: ErrorIssue[]) {
    super(message);
    this.name = "ApiError";
    this.code = code;
    this.issues = issues;
  }
  get status(): number {
    return codeToStatus[this.code];
  }
}

export const errorBodySchema = z
  .object({
    error: z.object({
      code: z.enum(ERROR_CODES),
      message: z.string(),
      requestId: z.string(),
      issues: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
    }),
  })
  .openapi("Error");
export type ErrorBody = z.infer<typeof errorBodySchema>;

/** Turn zod issues into ErrorIssues whose path names the field, e.g. "body.labels.env". */
export function issuesFromZod(source: string, issues: readonly { path: readonly PropertyKey[]; message: string }[]): ErrorIssue[] {
  return issues.map((i) => ({
    path: [source, ...i.path.map(String)].filter(Boolean).join("."),
    message: i.message,
  }));
}

export function validationError(issues: ErrorIssue[]): ApiError {
  const fields = [...new Set(issues.map((i) => i.path))];
  return new ApiError("BAD_REQUEST", `invalid ${fields.join(", ")}: ${issues[0]?.message ?? "invalid input"}`, issues);
}
