/**
 * API key scopes. `admin` covers every tenant scope; `operator` (only on the first
 * tenant's bootstrap key) manages tenants and is not implied by `admin`.
 */
import { z } from "@hono/zod-openapi";
import { ApiError } from "./errors.ts";

export const TENANT_SCOPES = ["admin", "captures:read", "captures:write", "agents:read", "agents:write"] as const;
export const SCOPES = [...TENANT_SCOPES, "operator"] as const;
export type Scope = (typeof SCOPES)[number];
export const scopeSchema = z.enum(SCOPES);

export function hasScope(granted: readonly string[], required: Scope): boolean {
  if (granted.includes(required)) return true;
  return required !== "operator" && granted.includes("admin");
}

export function requireScope(granted: readonly string[], required: Scope): void {
  if (!hasScope(granted, required)) throw new ApiError("FORBIDDEN", `this API key lacks the "${required}" scope`);
}
