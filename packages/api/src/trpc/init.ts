/**
 * tRPC setup: the context every procedure gets, and the translation of ApiError
 * (and zod input errors) into tRPC errors that carry our error code and issues.
 */
import { initTRPC, TRPCError, type TRPC_ERROR_CODE_KEY } from "@trpc/server";
import { ZodError } from "zod";
import { ApiError, issuesFromZod, validationError, type ErrorCode, type ErrorIssue } from "../errors.ts";
import { unstorableTextIssues } from "../schemas.ts";
import type { AuthContext, Services } from "../services.ts";

export type TrpcContext = {
  auth: AuthContext | null;
  services: Services;
  requestId: string;
};

const trpcCodeFor: Record<ErrorCode, TRPC_ERROR_CODE_KEY> = {
  BAD_REQUEST: "BAD_REQUEST",
  UNAUTHORIZED: "UNAUTHORIZED",
  FORBIDDEN: "FORBIDDEN",
  NOT_FOUND: "NOT_FOUND",
  METHOD_NOT_ALLOWED: "METHOD_NOT_SUPPORTED",
  CONFLICT: "CONFLICT",
  GONE: "NOT_FOUND",
  PAYLOAD_TOO_LARGE: "PAYLOAD_TOO_LARGE",
  UNSUPPORTED_MEDIA_TYPE: "UNSUPPORTED_MEDIA_TYPE",
  TOO_MANY_REQUESTS: "TOO_MANY_REQUESTS",
  INTERNAL_SERVER_ERROR: "INTERNAL_SERVER_ERROR",
  UNAVAILABLE: "SERVICE_UNAVAILABLE",
};

/** tRPC's own errors (unknown procedure, wrong method, …) in our error codes. */
const apiCodeFor: Partial<Record<TRPC_ERROR_CODE_KEY, ErrorCode>> = Object.fromEntries(
  Object.entries(trpcCodeFor)
    .filter(([code]) => code !== "GONE")
    .map(([code, trpcCode]) => [trpcCode, code as ErrorCode]),
);

const t = initTRPC.context<TrpcContext>().create({
  errorFormatter({ shape, error, ctx }) {
    const cause = error.cause;
    let code: ErrorCode | undefined;
    let issues: ErrorIssue[] | undefined;
    let message = shape.message;
    if (cause instanceof ApiError) {
      code = cause.code;
      // Services name fields as REST carries them (query.cursor, body.name); over tRPC they are all input.
      issues = cause.issues?.map((i) => ({ ...i, path: i.path.replace(/^(?:query|body|param)(?=\.|$)/, "input") }));
    } else if (cause instanceof ZodError) {
      code = "BAD_REQUEST";
      issues = issuesFromZod("input", cause.issues);
      message = `invalid ${issues.map((i) => i.path).join(", ")}: ${issues[0]?.message ?? ""}`;
    } else if (error.code === "INTERNAL_SERVER_ERROR") {
      code = "INTERNAL_SERVER_ERROR";
      message = "internal server error";
    } else if (error.code === "BAD_REQUEST" || error.code === "PARSE_ERROR") {
      // tRPC's own refusals (input that is not JSON, a batch it cannot read): the input as a whole.
      code = "BAD_REQUEST";
      issues = [{ path: "input", message: shape.message }];
      message = `invalid input: ${shape.message}`;
    } else {
      code = apiCodeFor[error.code];
    }
    return {
      ...shape,
      message,
      data: { ...shape.data, stack: undefined, apiCode: code ?? null, issues: issues ?? null, requestId: ctx?.requestId ?? null },
    };
  },
});

/** Run a service call, turning ApiError into a TRPCError that keeps it as the cause. */
export async function callService<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ApiError) throw new TRPCError({ code: trpcCodeFor[err.code], message: err.message, cause: err });
    throw err;
  }
}

export const router = t.router;
export const publicProcedure = t.procedure;
/** Text Postgres cannot store (NUL, lone surrogates) is a 400 naming the field, as in REST. */
const storableInput = t.middleware(async ({ getRawInput, next }) => {
  const issues = unstorableTextIssues("input", await getRawInput());
  if (issues.length) {
    const err = validationError(issues);
    throw new TRPCError({ code: "BAD_REQUEST", message: err.message, cause: err });
  }
  return next();
});

export const authedProcedure = t.procedure.use(storableInput).use(({ ctx, next }) => {
  if (!ctx.auth) {
    const err = new ApiError("UNAUTHORIZED", "missing or invalid API key: send Authorization: Bearer <key>");
    throw new TRPCError({ code: "UNAUTHORIZED", message: err.message, cause: err });
  }
  return next({ ctx: { ...ctx, auth: ctx.auth } });
});
