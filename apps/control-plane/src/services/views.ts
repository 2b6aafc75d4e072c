/** Database rows → API views (camelCase, ISO timestamps, never secrets). */
import type { ApiKeyView, AuditEntryView, TenantView } from "@hdrcap/api";
import type { ApiKeyRow, AuditEntry, Tenant } from "@hdrcap/db";

const iso = (d: Date | null): string | null => (d === null ? null : d.toISOString());

export function tenantView(t: Tenant): TenantView {
  return { id: t.id, slug: t.slug, name: t.name, createdAt: t.created_at.toISOString() };
}

export function apiKeyView(k: ApiKeyRow): ApiKeyView {
  return {
    id: k.id,
    name: k.name,
    prefix: k.prefix,
    scopes: k.scopes,
    expiresAt: iso(k.expires_at),
    revokedAt: iso(k.revoked_at),
    lastUsedAt: iso(k.last_used_at),
    createdAt: k.created_at.toISOString(),
    rateLimit: k.rate_limit_per_second !== null && k.rate_limit_burst !== null ? { perSecond: k.rate_limit_per_second, burst: k.rate_limit_burst } : null,
    rotatedToKeyId: k.rotated_to_key_id,
  };
}

export function auditEntryView(e: AuditEntry): AuditEntryView {
  return {
    id: e.id,
    action: e.action,
    resourceType: e.resource_type,
    resourceId: e.resource_id,
    actorKeyId: e.actor_key_id,
    requestId: e.request_id,
    ip: e.ip,
    details: (e.details ?? {}) as Record<string, unknown>,
    createdAt: e.created_at.toISOString(),
  };
}
