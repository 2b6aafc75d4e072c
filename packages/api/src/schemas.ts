/** Request and response schemas of the public API (shared by REST and tRPC). */
import { z } from "@hono/zod-openapi";
import type { ErrorIssue } from "./errors.ts";
import { queryIntSchema } from "./query-int.ts";
import { scopeSchema } from "./scopes.ts";
import { isStorableText, UNSTORABLE_TEXT_MESSAGE } from "./storable-text.ts";

export { isStorableText, UNSTORABLE_TEXT_MESSAGE };

export const idSchema = (prefix: string) =>
  z
    .string()
    .max(64)
    .regex(new RegExp(`^${prefix}_[A-Za-z0-9]{8,40}$`), `must be an id like ${prefix}_…`);

export const pageQuerySchema = z.object({
  limit: queryIntSchema(1, 1000).default(100),
  cursor: z.string().max(200).optional(),
});
export type PageQuery = z.infer<typeof pageQuerySchema>;

export const tenantSchema = z
  .object({
    id: z.string(),
    slug: z.string(),
    name: z.string(),
    createdAt: z.string(),
  })
  .openapi("Tenant");
export type TenantView = z.infer<typeof tenantSchema>;

export const apiKeySchema = z
  .object({
    id: z.string(),
    name: z.string(),
    prefix: z.string().openapi({ description: "First characters of the key, for recognising it" }),
    scopes: z.array(z.string()),
    expiresAt: z.string().nullable(),
    revokedAt: z.string().nullable(),
    lastUsedAt: z.string().nullable(),
    createdAt: z.string(),
    rateLimit: z.object({ perSecond: z.number(), burst: z.number() }).nullable().openapi({ description: "null: the server default" }),
    rotatedToKeyId: z.string().nullable(),
  })
  .openapi("ApiKey");
export type ApiKeyView = z.infer<typeof apiKeySchema>;

export const createdApiKeySchema = z
  .object({
    apiKey: apiKeySchema,
    key: z.string().openapi({ description: "The secret key. Shown once; only its hash is stored." }),
  })
  .openapi("CreatedApiKey");
export type CreatedApiKey = z.infer<typeof createdApiKeySchema>;

export const rateLimitSchema = z
  .object({
    perSecond: z.number().int().min(1).max(100_000),
    burst: z.number().int().min(1).max(1_000_000),
  })
  .strict()
  .openapi("RateLimit");

export const rotateApiKeyInputSchema = z
  .object({
    gracePeriodSeconds: z.number().int().min(0).max(7 * 86_400).default(3600).openapi({ description: "How long the old key keeps working" }),
  })
  .strict()
  .openapi("RotateApiKeyInput");
export type RotateApiKeyInput = z.infer<typeof rotateApiKeyInputSchema>;

export const createApiKeyInputSchema = z
  .object({
    name: z.string().trim().min(1).max(100),
    scopes: z.array(scopeSchema).min(1).max(16),
    expiresAt: z.iso.datetime({ offset: true }).optional(),
    rateLimit: rateLimitSchema.optional(),
  })
  .strict()
  .openapi("CreateApiKeyInput");
export type CreateApiKeyInput = z.infer<typeof createApiKeyInputSchema>;

export const slugSchema = z
  .string()
  .min(2)
  .max(40)
  .regex(/^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/, "lower-case letters, digits and inner hyphens only");

export const createTenantInputSchema = z
  .object({
    slug: slugSchema,
    name: z.string().trim().min(1).max(200),
  })
  .strict()
  .openapi("CreateTenantInput");
export type CreateTenantInput = z.infer<typeof createTenantInputSchema>;

export const createdTenantSchema = z
  .object({ tenant: tenantSchema, apiKey: apiKeySchema, key: z.string() })
  .openapi("CreatedTenant");
export type CreatedTenant = z.infer<typeof createdTenantSchema>;

export const whoamiSchema = z
  .object({
    tenant: tenantSchema,
    apiKey: apiKeySchema,
  })
  .openapi("WhoAmI");
export type WhoAmI = z.infer<typeof whoamiSchema>;

export const pageOf = <T extends z.ZodType>(item: T, name: string) =>
  z.object({ items: z.array(item), nextCursor: z.string().nullable() }).openapi(name);
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export const auditEntrySchema = z
  .object({
    id: z.string(),
    action: z.string(),
    resourceType: z.string(),
    resourceId: z.string().nullable(),
    actorKeyId: z.string().nullable(),
    requestId: z.string().nullable(),
    ip: z.string().nullable(),
    details: z.record(z.string(), z.unknown()),
    createdAt: z.string(),
  })
  .openapi("AuditEntry");
export type AuditEntryView = z.infer<typeof auditEntrySchema>;


/** Issues for every string (and object key) in validated input that Postgres cannot store as sent. */
export function unstorableTextIssues(source: string, value: unknown, max = 10): ErrorIssue[] {
  const issues: ErrorIssue[] = [];
  const stack: { path: string; value: unknown }[] = [{ path: source, value }];
  while (stack.length && issues.length < max) {
    const { path, value: v } = stack.pop()!;
    if (typeof v === "string") {
      if (!isStorableText(v)) issues.push({ path, message: UNSTORABLE_TEXT_MESSAGE });
    } else if (Array.isArray(v)) {
      v.forEach((item, i) => stack.push({ path: `${path}.${i}`, value: item }));
    } else if (v && typeof v === "object") {
      for (const [k, item] of Object.entries(v)) {
        if (!isStorableText(k)) issues.push({ path: `${path}.${k}`, message: UNSTORABLE_TEXT_MESSAGE });
        stack.push({ path: `${path}.${k}`, value: item });
      }
    }
  }
  return issues;
}
