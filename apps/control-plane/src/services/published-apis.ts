/**
 * Published APIs: a tenant turns a capture's records, narrowed by fixed filters and
 * cut to a chosen field set, into a named API for outside consumers. This module owns
 * the lifecycle (draft → published → deprecated → retired), the consumer keys
 * (hcc_…, SHA-256 stored) and the serving side: resolving /apis/<tenant>/<name>,
 * verifying a consumer key of that API, querying and projecting its records, and
 * the API's own OpenAPI document.
 */
import {
  ApiError,
  PUBLISHED_QUERY_PARAMS,
  requireScope,
  storedRecordSchema,
  type AuthContext,
  type ConsumerView,
  type Page,
  type PublishedApiFilter,
  type PublishedApiState,
  type PublishedApiView,
  type PublishedRecordField,
  type PublishedRecordsQuery,
  type Services,
} from "@hdrcap/api";
import type { Db, PublishedApiConsumerRow, PublishedApiRow } from "@hdrcap/db";
import { z } from "zod";
import { audit } from "./audit.ts";
import { decodeCursor, pageFrom } from "./cursor.ts";
import { hashApiKey, newId, randomBase62 } from "./ids.ts";
import { listCaptureRecords } from "./records.ts";

export const CONSUMER_KEY_PREFIX = "hcc_";

const iso = (d: Date | null): string | null => (d === null ? null : d.toISOString());

export function publicPath(tenantSlug: string, name: string): string {
  return `/apis/${tenantSlug}/${name}`;
}

function publishedApiView(row: PublishedApiRow, tenantSlug: string): PublishedApiView {
  return {
    id: row.id,
    name: row.name,
    captureId: row.capture_id,
    description: row.description,
    state: row.state as PublishedApiState,
    filter: row.filter as PublishedApiFilter,
    fields: row.fields as PublishedRecordField[],
    path: publicPath(tenantSlug, row.name),
    sunsetAt: iso(row.sunset_at),
    publishedAt: iso(row.published_at),
    deprecatedAt: iso(row.deprecated_at),
    retiredAt: iso(row.retired_at),
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

function consumerView(row: PublishedApiConsumerRow): ConsumerView {
  return {
    id: row.id,
    apiId: row.api_id,
    name: row.name,
    prefix: row.prefix,
    rateLimit: row.rate_limit_per_second !== null && row.rate_limit_burst !== null ? { perSecond: row.rate_limit_per_second, burst: row.rate_limit_burst } : null,
    revokedAt: iso(row.revoked_at),
    createdAt: row.created_at.toISOString(),
  };
}

/** A fresh consumer key: hcc_ + 32 base62 characters (≈190 bits). */
function newConsumerKey(): { key: string; prefix: string; hash: string } {
  const key = CONSUMER_KEY_PREFIX + randomBase62(32);
  return { key, prefix: key.slice(0, CONSUMER_KEY_PREFIX.length + 8), hash: hashApiKey(key) };
}

function looksLikeConsumerKey(key: string): boolean {
  return /^hcc_[0-9A-Za-z]{32}$/.test(key);
}

/** Which states each transition starts from, and the message when it cannot. */
const TRANSITIONS = {
  publish: { from: ["draft"], to: "published", refuse: (s: string) => (s === "retired" ? "a retired API cannot be published again; create a new one" : `only a draft can be published (this API is ${s})`) },
  deprecate: { from: ["published"], to: "deprecated", refuse: (s: string) => `only a published API can be deprecated (this API is ${s})` },
  retire: { from: ["published", "deprecated"], to: "retired", refuse: (s: string) => (s === "draft" ? "a draft was never served: delete it instead of retiring it" : `this API is already ${s}`) },
} as const;

/**
 * `onConsumerKeyRevoked` runs after a revocation commits, with the key's hash, so every
 * replica's ConsumerKeyCache forgets it.
 */
export function createPublishedApisService(db: Db, onConsumerKeyRevoked?: (keyHash: string) => Promise<void>): Services["publishedApis"] {
  async function load(auth: AuthContext, id: string): Promise<PublishedApiRow> {
    const row = await db.selectFrom("published_apis").selectAll().where("tenant_id", "=", auth.tenant.id).where("id", "=", id).executeTakeFirst();
    if (!row) throw new ApiError("NOT_FOUND", `no published API ${id}`);
    return row;
  }

  async function transition(auth: AuthContext, id: string, verb: keyof typeof TRANSITIONS, extra: { sunset_at?: Date | null } = {}): Promise<PublishedApiView> {
    requireScope(auth.key.scopes, "captures:write");
    const t = TRANSITIONS[verb];
    const now = new Date();
    const stamp = verb === "publish" ? { published_at: now } : verb === "deprecate" ? { deprecated_at: now } : { retired_at: now };
    return db.transaction().execute(async (tx) => {
      // Conditional on the current state, so two concurrent transitions cannot both win.
      const row = await tx
        .updateTable("published_apis")
        .set({ state: t.to, updated_at: now, ...stamp, ...extra })
        .where("tenant_id", "=", auth.tenant.id)
        .where("id", "=", id)
        .where("state", "in", [...t.from])
        .returningAll()
        .executeTakeFirst();
      if (!row) {
        const current = await tx.selectFrom("published_apis").select("state").where("tenant_id", "=", auth.tenant.id).where("id", "=", id).executeTakeFirst();
        if (!current) throw new ApiError("NOT_FOUND", `no published API ${id}`);
        throw new ApiError("CONFLICT", `cannot ${verb} published API ${id}: ${t.refuse(current.state)}`);
      }
      await audit(tx, auth, `published_api.${verb}`, { type: "published_api", id }, { name: row.name, ...(extra.sunset_at ? { sunsetAt: extra.sunset_at.toISOString() } : {}) });
      return publishedApiView(row, auth.tenant.slug);
    });
  }

  return {
    async create(auth, input) {
      requireScope(auth.key.scopes, "captures:write");
      const capture = await db.selectFrom("captures").select("id").where("tenant_id", "=", auth.tenant.id).where("id", "=", input.captureId).executeTakeFirst();
      if (!capture) throw new ApiError("NOT_FOUND", `no capture ${input.captureId}`, [{ path: "body.captureId", message: "no such capture" }]);
      return db.transaction().execute(async (tx) => {
        const row = await tx
          .insertInto("published_apis")
          .values({
            id: newId("api"),
            tenant_id: auth.tenant.id,
            name: input.name,
            capture_id: input.captureId,
            description: input.description ?? null,
            filter: input.filter,
            fields: input.fields,
            sunset_at: null,
            published_at: null,
            deprecated_at: null,
            retired_at: null,
            created_by_key_id: auth.key.id,
          })
          .onConflict((oc) => oc.columns(["tenant_id", "name"]).doNothing())
          .returningAll()
          .executeTakeFirst();
        if (!row) throw new ApiError("CONFLICT", `a published API named "${input.name}" already exists in this tenant`, [{ path: "body.name", message: "already taken" }]);
        await audit(tx, auth, "published_api.create", { type: "published_api", id: row.id }, { name: row.name, captureId: row.capture_id, fields: row.fields });
        return publishedApiView(row, auth.tenant.slug);
      });
    },
    async list(auth, page) {
      requireScope(auth.key.scopes, "captures:read");
      let q = db.selectFrom("published_apis").selectAll().where("tenant_id", "=", auth.tenant.id).orderBy("id").limit(page.limit + 1);
      const after = decodeCursor(page.cursor);
      if (after) q = q.where("id", ">", after);
      return pageFrom(await q.execute(), page.limit, (r) => r.id, (r) => publishedApiView(r, auth.tenant.slug));
    },
    async get(auth, id) {
      requireScope(auth.key.scopes, "captures:read");
      return publishedApiView(await load(auth, id), auth.tenant.slug);
    },
    publish: (auth, id) => transition(auth, id, "publish"),
    async deprecate(auth, id, input) {
      const sunset = input.sunset ? new Date(input.sunset) : null;
      if (sunset && sunset.getTime() <= Date.now()) throw new ApiError("BAD_REQUEST", "invalid body.sunset: must be in the future", [{ path: "body.sunset", message: "must be in the future" }]);
      return transition(auth, id, "deprecate", { sunset_at: sunset });
    },
    retire: (auth, id) => transition(auth, id, "retire"),
    async remove(auth, id) {
      requireScope(auth.key.scopes, "captures:write");
      return db.transaction().execute(async (tx) => {
        const row = await tx.deleteFrom("published_apis").where("tenant_id", "=", auth.tenant.id).where("id", "=", id).where("state", "in", ["draft", "retired"]).returning(["id", "name"]).executeTakeFirst();
        if (!row) {
          const current = await tx.selectFrom("published_apis").select("state").where("tenant_id", "=", auth.tenant.id).where("id", "=", id).executeTakeFirst();
          if (!current) throw new ApiError("NOT_FOUND", `no published API ${id}`);
          throw new ApiError("CONFLICT", `cannot delete published API ${id}: it is ${current.state}; only a draft or a retired API can be deleted (retire it first)`);
        }
        await audit(tx, auth, "published_api.delete", { type: "published_api", id }, { name: row.name });
        return { id, deleted: true as const };
      });
    },
    async createConsumer(auth, id, input) {
      requireScope(auth.key.scopes, "captures:write");
      const api = await load(auth, id);
      if (api.state === "retired") throw new ApiError("CONFLICT", `published API ${id} is retired; it takes no new consumers`);
      const secret = newConsumerKey();
      return db.transaction().execute(async (tx) => {
        const row = await tx
          .insertInto("published_api_consumers")
          .values({
            id: newId("apc"),
            api_id: api.id,
            tenant_id: auth.tenant.id,
            name: input.name,
            prefix: secret.prefix,
            hash: secret.hash,
            rate_limit_per_second: input.rateLimit?.perSecond ?? null,
            rate_limit_burst: input.rateLimit?.burst ?? null,
            revoked_at: null,
            created_by_key_id: auth.key.id,
          })
          .returningAll()
          .executeTakeFirstOrThrow();
        await audit(tx, auth, "published_api.consumer.create", { type: "published_api_consumer", id: row.id }, { apiId: api.id, name: row.name });
        return { consumer: consumerView(row), key: secret.key };
      });
    },
    async listConsumers(auth, id, page): Promise<Page<ConsumerView>> {
      requireScope(auth.key.scopes, "captures:read");
      await load(auth, id);
      let q = db.selectFrom("published_api_consumers").selectAll().where("tenant_id", "=", auth.tenant.id).where("api_id", "=", id).orderBy("id").limit(page.limit + 1);
      const after = decodeCursor(page.cursor);
      if (after) q = q.where("id", ">", after);
      return pageFrom(await q.execute(), page.limit, (r) => r.id, consumerView);
    },
    async revokeConsumer(auth, id, consumerId) {
      requireScope(auth.key.scopes, "captures:write");
      const revoked = await db.transaction().execute(async (tx) => {
        const existing = await tx
          .selectFrom("published_api_consumers")
          .selectAll()
          .where("tenant_id", "=", auth.tenant.id)
          .where("api_id", "=", id)
          .where("id", "=", consumerId)
          .forUpdate()
          .executeTakeFirst();
        if (!existing) throw new ApiError("NOT_FOUND", `no consumer ${consumerId} of published API ${id}`);
        if (existing.revoked_at) return existing; // revoking twice changes nothing
        const row = await tx.updateTable("published_api_consumers").set({ revoked_at: new Date() }).where("id", "=", consumerId).returningAll().executeTakeFirstOrThrow();
        await audit(tx, auth, "published_api.consumer.revoke", { type: "published_api_consumer", id: consumerId }, { apiId: id });
        return row;
      });
      // Also when it was already revoked: a replica that missed the first notice hears it again.
      await onConsumerKeyRevoked?.(revoked.hash);
      return consumerView(revoked);
    },
  };
}

// ---- The serving side: /apis/<tenant-slug>/<name> ----

export interface ServedApi {
  row: PublishedApiRow;
  tenantId: string;
  tenantSlug: string;
}

/**
 * The API consumers may reach: a draft (or anything unknown) is 404, a retired one
 * 410. Existence of a draft is never revealed, whoever asks.
 */
export async function resolveServedApi(db: Db, tenantSlug: string, name: string): Promise<ServedApi> {
  const found = await db
    .selectFrom("published_apis")
    .innerJoin("tenants", "tenants.id", "published_apis.tenant_id")
    .selectAll("published_apis")
    .where("tenants.slug", "=", tenantSlug)
    .where("published_apis.name", "=", name)
    .executeTakeFirst();
  if (!found || found.state === "draft") throw new ApiError("NOT_FOUND", `no API ${publicPath(tenantSlug, name)}`);
  if (found.state === "retired") {
    throw new ApiError("GONE", `API ${publicPath(tenantSlug, name)} was retired${found.retired_at ? ` on ${found.retired_at.toISOString()}` : ""} and is no longer served`);
  }
  return { row: found, tenantId: found.tenant_id, tenantSlug };
}

/**
 * The consumer behind a presented key, if it is a live key of exactly this API.
 * `consumerByHash` finds a consumer row by key hash (ConsumerKeyCache.byHash: memory first).
 */
export async function verifyConsumerKey(
  consumerByHash: (hash: string) => Promise<PublishedApiConsumerRow | undefined>,
  api: ServedApi,
  presented: string | undefined,
): Promise<PublishedApiConsumerRow> {
  if (!presented) throw new ApiError("UNAUTHORIZED", `missing consumer key: send Authorization: Bearer <consumer key of ${publicPath(api.tenantSlug, api.row.name)}>`);
  const row = looksLikeConsumerKey(presented) ? await consumerByHash(hashApiKey(presented)) : undefined;
  // Another API's key, a tenant API key, an unknown or revoked key: one answer for all.
  if (!row || row.api_id !== api.row.id || row.revoked_at !== null) throw new ApiError("UNAUTHORIZED", "invalid or revoked consumer key for this API");
  return row;
}

/** Deprecation (RFC 9745) and Sunset (RFC 8594) headers of a deprecated API. */
export function lifecycleHeaders(api: PublishedApiRow): Record<string, string> {
  if (api.state !== "deprecated") return {};
  const headers: Record<string, string> = { Deprecation: `@${Math.floor((api.deprecated_at ?? new Date()).getTime() / 1000)}` };
  if (api.sunset_at) headers.Sunset = api.sunset_at.toUTCString();
  return headers;
}

function project(record: Record<string, unknown>, fields: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(fields.map((f) => [f, record[f]]));
}

/**
 * One page of the API's records: its fixed filter ANDed with the consumer's time
 * window and paging, then cut to the chosen fields. The records query is the
 * tenant API's own, run with a read-only identity of the API's tenant.
 */
export async function servePublishedRecords(db: Db, api: ServedApi, consumer: PublishedApiConsumerRow, query: PublishedRecordsQuery): Promise<Page<Record<string, unknown>>> {
  const asTenant: AuthContext = {
    tenant: { id: api.tenantId, slug: api.tenantSlug, name: api.tenantSlug, createdAt: api.row.created_at.toISOString() },
    key: { id: consumer.id, name: consumer.name, prefix: consumer.prefix, scopes: ["captures:read"] },
    requestId: "",
    ip: null,
  };
  const fixed = api.row.filter as PublishedApiFilter;
  const page = await listCaptureRecords(db, asTenant, api.row.capture_id, {
    ...fixed,
    since: query.since,
    until: query.until,
    order: query.order,
    limit: query.limit,
    cursor: query.cursor,
  });
  return { items: page.items.map((r) => project(r, api.row.fields)), nextCursor: page.nextCursor };
}

/** JSON Schema (2020-12, as OpenAPI 3.1 uses) of each stored-record field. */
const recordFieldSchemas = (z.toJSONSchema(storedRecordSchema, { io: "output" }) as { properties: Record<string, unknown> }).properties;

/** The API's own OpenAPI 3.1 document: only its fields, only the consumer's parameters, its auth scheme. */
export function publishedApiOpenApi(api: ServedApi): Record<string, unknown> {
  const path = publicPath(api.tenantSlug, api.row.name);
  const fields = api.row.fields;
  const errorRef = { $ref: "#/components/schemas/Error" };
  const errorResponse = (description: string) => ({ description, content: { "application/json": { schema: errorRef } } });
  const param = (name: (typeof PUBLISHED_QUERY_PARAMS)[number], schema: Record<string, unknown>, description: string) => ({ name, in: "query", required: false, schema, description });
  return {
    openapi: "3.1.0",
    info: {
      title: `${api.tenantSlug}/${api.row.name}`,
      version: api.row.updated_at.toISOString(),
      ...(api.row.description ? { description: api.row.description } : {}),
    },
    paths: {
      [path]: {
        get: {
          operationId: "listRecords",
          summary: "Records of this API, oldest first by default",
          ...(api.row.state === "deprecated" ? { deprecated: true } : {}),
          security: [{ ConsumerKey: [] }],
          parameters: [
            param("since", { type: "string", format: "date-time" }, "Only records at or after this time"),
            param("until", { type: "string", format: "date-time" }, "Only records before this time"),
            param("limit", { type: "integer", minimum: 1, maximum: 1000, default: 100 }, "Records per page"),
            param("cursor", { type: "string", maxLength: 200 }, "nextCursor of the previous page"),
            param("order", { type: "string", enum: ["asc", "desc"], default: "asc" }, "Oldest (asc) or newest (desc) first"),
          ],
          responses: {
            200: {
              description: "A page of records",
              content: {
                "application/json": {
                  schema: {
                    type: "object",
                    properties: { items: { type: "array", items: { $ref: "#/components/schemas/Record" } }, nextCursor: { type: ["string", "null"] } },
                    required: ["items", "nextCursor"],
                  },
                },
              },
            },
            400: errorResponse("Invalid query parameter; `issues` names it"),
            401: errorResponse("Missing, invalid or revoked consumer key"),
            404: errorResponse("No such API"),
            410: errorResponse("The API was retired"),
            429: errorResponse("Rate limit of this consumer exceeded; see Retry-After"),
          },
        },
      },
    },
    components: {
      securitySchemes: { ConsumerKey: { type: "http", scheme: "bearer", description: `A consumer key (${CONSUMER_KEY_PREFIX}…) issued for this API` } },
      schemas: {
        Record: { type: "object", properties: Object.fromEntries(fields.map((f) => [f, recordFieldSchemas[f]])), required: [...fields], additionalProperties: false },
        Error: {
          type: "object",
          properties: {
            error: {
              type: "object",
              properties: { code: { type: "string" }, message: { type: "string" }, requestId: { type: "string" }, issues: { type: "array", items: { type: "object", properties: { path: { type: "string" }, message: { type: "string" } } } } },
              required: ["code", "message", "requestId"],
            },
          },
          required: ["error"],
        },
      },
    },
  };
}
