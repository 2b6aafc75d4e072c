/**
 * What every documented route requires, declared next to the security suites. A route
 * that /openapi.json lists and this table does not fails the suites: a new route must
 * say who may call it and give one valid request body.
 */
import type { Scope } from "@hdrcap/api";
import { hostFacts, natsUserPublicKey, type World } from "./world.ts";

export type Access =
  /** An API key holding this scope (admin implies every scope but operator). */
  | { scope: Scope }
  /** Any valid API key, whatever its scopes. */
  | { anyKey: true }
  /** Not an API key: the route authenticates its caller another way, or not at all. */
  | { public: "enrollment-token" | "agent-signature" | "consumer-key" | "none" };

export interface RoutePolicy {
  access: Access;
  /** A valid JSON body for the route (fresh each call: some bodies must be unique). */
  body?: (w: World) => unknown;
  /** The Authorization header a public route needs to get past authentication. */
  credential?: (w: World) => string;
}

let seq = 0;
const unique = (stem: string) => `${stem}-${Date.now().toString(36)}-${(seq++).toString(36)}`;

export const ROUTE_POLICIES: Record<string, RoutePolicy> = {
  "GET /v1/whoami": { access: { anyKey: true } },
  "POST /v1/enroll": {
    access: { public: "enrollment-token" },
    credential: (w) => w.a.enrollmentToken,
    body: () => ({ facts: hostFacts(unique("machine")), natsPublicKey: natsUserPublicKey() }),
  },
  "GET /bundles/latest.json": { access: { public: "none" } },
  "POST /v1/agents/self/deregister": {
    access: { public: "agent-signature" },
    body: (w) => ({ agentId: w.a.ids.agt, timestamp: Date.now(), signature: "A".repeat(86) }),
  },

  "GET /v1/api-keys": { access: { scope: "admin" } },
  "POST /v1/api-keys": { access: { scope: "admin" }, body: () => ({ name: unique("key"), scopes: ["captures:read"] }) },
  "POST /v1/api-keys/{id}/rotate": { access: { scope: "admin" }, body: () => ({ gracePeriodSeconds: 60 }) },
  "DELETE /v1/api-keys/{id}": { access: { scope: "admin" } },
  "GET /v1/audit": { access: { scope: "admin" } },

  "POST /v1/tenants": { access: { scope: "operator" }, body: () => ({ slug: unique("t"), name: "Tenant" }) },
  "GET /v1/tenants": { access: { scope: "operator" } },

  "GET /v1/agents": { access: { scope: "agents:read" } },
  "GET /v1/agents/{id}": { access: { scope: "agents:read" } },
  "DELETE /v1/agents/{id}": { access: { scope: "agents:write" } },
  "POST /v1/enrollment-tokens": { access: { scope: "agents:write" }, body: () => ({ labels: { env: "test" }, maxUses: 2 }) },
  "DELETE /v1/enrollment-tokens/{id}": { access: { scope: "agents:write" } },
  // Selects no agent, so each call is a rollout that completes at once (one may run per tenant).
  "POST /v1/agent-upgrades": { access: { scope: "agents:write" }, body: () => ({ agents: { labels: { rollout: unique("none") } }, batchSize: 2, timeoutSeconds: 60 }) },
  "GET /v1/agent-upgrades": { access: { scope: "agents:read" } },
  "GET /v1/agent-upgrades/{id}": { access: { scope: "agents:read" } },
  // The world's rollout has completed: cancelling it is a 409 that changes nothing.
  "POST /v1/agent-upgrades/{id}/cancel": { access: { scope: "agents:write" } },

  "GET /v1/captures": { access: { scope: "captures:read" } },
  "POST /v1/captures": { access: { scope: "captures:write" }, body: () => ({ name: unique("capture"), filter: { ports: [8080] } }) },
  "GET /v1/captures/{id}": { access: { scope: "captures:read" } },
  "DELETE /v1/captures/{id}": { access: { scope: "captures:write" } },
  "POST /v1/captures/{id}/stop": { access: { scope: "captures:write" } },
  "GET /v1/captures/{id}/records": { access: { scope: "captures:read" } },
  "GET /v1/captures/{id}/stats": { access: { scope: "captures:read" } },
  "GET /v1/captures/{id}/stream": { access: { scope: "captures:read" } },

  "POST /v1/apis": { access: { scope: "captures:write" }, body: (w) => ({ name: unique("api"), captureId: w.a.ids.cap, fields: ["id", "ts"] }) },
  "GET /v1/apis": { access: { scope: "captures:read" } },
  "GET /v1/apis/{id}": { access: { scope: "captures:read" } },
  "DELETE /v1/apis/{id}": { access: { scope: "captures:write" } },
  "POST /v1/apis/{id}/publish": { access: { scope: "captures:write" } },
  "POST /v1/apis/{id}/deprecate": { access: { scope: "captures:write" }, body: () => ({ sunset: new Date(Date.now() + 86_400_000).toISOString() }) },
  "POST /v1/apis/{id}/retire": { access: { scope: "captures:write" } },
  "POST /v1/apis/{id}/consumers": { access: { scope: "captures:write" }, body: () => ({ name: unique("consumer") }) },
  "GET /v1/apis/{id}/consumers": { access: { scope: "captures:read" } },
  "DELETE /v1/apis/{id}/consumers/{consumerId}": { access: { scope: "captures:write" } },
  // Served to outside consumers with their consumer keys (hcc_…), not tenant API keys.
  "GET /apis/{tenant}/{name}": { access: { public: "consumer-key" }, credential: (w) => w.a.consumerKey },
  "GET /apis/{tenant}/{name}/openapi.json": { access: { public: "none" } },
};
