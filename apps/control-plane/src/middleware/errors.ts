/**
 * The edge where every failure becomes the one error body:
 * { error: { code, message, requestId, issues? } }. Internals never leak.
 */
import { ApiError, codeToStatus, type ErrorBody, type ErrorCode } from "@hdrcap/api";
import type { Context, ErrorHandler, NotFoundHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { AppEnv } from "../context.ts";

const statusToCode: Record<number, ErrorCode> = Object.fromEntries(
  Object.entries(codeToStatus).map(([code, status]) => [status, code as ErrorCode]),
);

export function errorResponse(c: Context<AppEnv>, err: ApiError): Response {
  const body: ErrorBody = {
    error: {
      code: err.code,
      message: err.message,
      requestId: c.get("requestId") ?? "unknown",
      ...(err.issues ? { issues: err.issues } : {}),
    },
  };
  if (err.code === "UNAUTHORIZED") c.header("WWW-Authenticate", 'Bearer realm="hdrcap"');
  return c.json(body, err.status as ContentfulStatusCode);
}

export const onError: ErrorHandler<AppEnv> = (err, c) => {
  if (err instanceof ApiError) return errorResponse(c, err);
  if (err instanceof HTTPException) {
    const code = statusToCode[err.status] ?? (err.status >= 500 ? "INTERNAL_SERVER_ERROR" : "BAD_REQUEST");
    // Hono's JSON validator reports unparsable bodies this way.
    const message = err.status === 400 ? `invalid body: ${err.message || "malformed JSON"}` : err.message || code.toLowerCase().replaceAll("_", " ");
    const issues = err.status === 400 ? [{ path: "body", message: err.message || "malformed JSON" }] : undefined;
    return errorResponse(c, new ApiError(code, message, issues));
  }
  (c.get("logger") ?? console).error({ err }, "unhandled error");
  return errorResponse(c, new ApiError("INTERNAL_SERVER_ERROR", "internal server error"));
};

export const notFound: NotFoundHandler<AppEnv> = (c) =>
  errorResponse(c, new ApiError("NOT_FOUND", `no route ${c.req.method} ${c.req.path}`));
