/** Shared pieces of every REST route: the router factory, validation hook and documented errors. */
import { errorBodySchema, issuesFromZod, unstorableTextIssues, validationError } from "@hdrcap/api";
import { OpenAPIHono, type z } from "@hono/zod-openapi";
import type { AppEnv } from "../context.ts";

export function createRouter(): OpenAPIHono<AppEnv> {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      const source = result.target === "json" ? "body" : result.target;
      if (!result.success) throw validationError(issuesFromZod(source, result.error.issues));
      // Valid by the schema is not yet storable: a NUL in any text would fail in Postgres (500).
      const unstorable = unstorableTextIssues(source, result.data);
      if (unstorable.length) throw validationError(unstorable);
    },
  });
}

const errorContent = { "application/json": { schema: errorBodySchema } };

export const errorResponses = {
  400: { description: "Invalid input; `issues` names each field", content: errorContent },
  401: { description: "Missing, invalid, expired or revoked API key", content: errorContent },
  403: { description: "The key lacks the required scope", content: errorContent },
  404: { description: "Not found (or belongs to another tenant)", content: errorContent },
  429: { description: "Rate limit exceeded for this key; see Retry-After", content: errorContent },
  500: { description: "Unexpected error (no internals)", content: errorContent },
} as const;

export const jsonContent = <T extends z.ZodType>(schema: T, description: string) => ({
  content: { "application/json": { schema } },
  description,
});

export const jsonBody = <T extends z.ZodType>(schema: T) => ({
  body: { content: { "application/json": { schema } }, required: true },
});

export const bearerSecurity = [{ Bearer: [] }];
