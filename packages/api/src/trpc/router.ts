/** The tRPC router: one procedure per service call, same inputs as the REST routes. */
import type { inferRouterInputs, inferRouterOutputs, TRPCRouterRecord } from "@trpc/server";
import { z } from "zod";
import { createApiKeyInputSchema, createTenantInputSchema, idSchema, pageQuerySchema, rotateApiKeyInputSchema } from "../schemas.ts";
import { createEnrollmentTokenInputSchema } from "../agents.ts";
import { AGENT_UPGRADE_STATUSES, createAgentUpgradeInputSchema } from "../agent-upgrades.ts";
import { CAPTURE_STATUSES, createCaptureInputSchema } from "../captures.ts";
import { recordsQuerySchema } from "../records.ts";
import { createConsumerInputSchema, createPublishedApiInputSchema, deprecatePublishedApiInputSchema } from "../published-apis.ts";

const headerEqualsSchema = z.object({
  name: z
    .string()
    .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$/)
    .transform((n) => n.toLowerCase()),
  value: z.string().max(4096),
});
import { authedProcedure, callService, router } from "./init.ts";

const apiKeysRouter = {
  create: authedProcedure.input(createApiKeyInputSchema).mutation(({ ctx, input }) => callService(() => ctx.services.apiKeys.create(ctx.auth, input))),
  list: authedProcedure.input(pageQuerySchema).query(({ ctx, input }) => callService(() => ctx.services.apiKeys.list(ctx.auth, input))),
  revoke: authedProcedure.input(z.object({ id: idSchema("key") })).mutation(({ ctx, input }) => callService(() => ctx.services.apiKeys.revoke(ctx.auth, input.id))),
  rotate: authedProcedure
    .input(rotateApiKeyInputSchema.extend({ id: idSchema("key") }))
    .mutation(({ ctx, input }) => callService(() => ctx.services.apiKeys.rotate(ctx.auth, input.id, input))),
} satisfies TRPCRouterRecord;

const tenantsRouter = {
  create: authedProcedure.input(createTenantInputSchema).mutation(({ ctx, input }) => callService(() => ctx.services.tenants.create(ctx.auth, input))),
  list: authedProcedure.input(pageQuerySchema).query(({ ctx, input }) => callService(() => ctx.services.tenants.list(ctx.auth, input))),
} satisfies TRPCRouterRecord;

const agentsRouter = {
  list: authedProcedure
    .input(pageQuerySchema.extend({ status: z.enum(["online", "offline"]).optional() }))
    .query(({ ctx, input }) => callService(() => ctx.services.agents.list(ctx.auth, input))),
  get: authedProcedure.input(z.object({ id: idSchema("agt") })).query(({ ctx, input }) => callService(() => ctx.services.agents.get(ctx.auth, input.id))),
  createEnrollmentToken: authedProcedure
    .input(createEnrollmentTokenInputSchema)
    .mutation(({ ctx, input }) => callService(() => ctx.services.agents.createEnrollmentToken(ctx.auth, input))),
  revokeEnrollmentToken: authedProcedure
    .input(z.object({ id: idSchema("etk") }))
    .mutation(({ ctx, input }) => callService(() => ctx.services.agents.revokeEnrollmentToken(ctx.auth, input.id))),
  remove: authedProcedure.input(z.object({ id: idSchema("agt") })).mutation(({ ctx, input }) => callService(() => ctx.services.agents.remove(ctx.auth, input.id))),
} satisfies TRPCRouterRecord;

const agentUpgradesRouter = {
  create: authedProcedure.input(createAgentUpgradeInputSchema).mutation(({ ctx, input }) => callService(() => ctx.services.agentUpgrades.create(ctx.auth, input))),
  list: authedProcedure
    .input(pageQuerySchema.extend({ status: z.enum(AGENT_UPGRADE_STATUSES).optional() }))
    .query(({ ctx, input }) => callService(() => ctx.services.agentUpgrades.list(ctx.auth, input))),
  get: authedProcedure.input(z.object({ id: idSchema("upg") })).query(({ ctx, input }) => callService(() => ctx.services.agentUpgrades.get(ctx.auth, input.id))),
  cancel: authedProcedure.input(z.object({ id: idSchema("upg") })).mutation(({ ctx, input }) => callService(() => ctx.services.agentUpgrades.cancel(ctx.auth, input.id))),
} satisfies TRPCRouterRecord;

const capturesRouter = {
  create: authedProcedure.input(createCaptureInputSchema).mutation(({ ctx, input }) => callService(() => ctx.services.captures.create(ctx.auth, input))),
  list: authedProcedure
    .input(pageQuerySchema.extend({ status: z.enum(CAPTURE_STATUSES).optional() }))
    .query(({ ctx, input }) => callService(() => ctx.services.captures.list(ctx.auth, input))),
  get: authedProcedure.input(z.object({ id: idSchema("cap") })).query(({ ctx, input }) => callService(() => ctx.services.captures.get(ctx.auth, input.id))),
  stop: authedProcedure.input(z.object({ id: idSchema("cap") })).mutation(({ ctx, input }) => callService(() => ctx.services.captures.stop(ctx.auth, input.id))),
  remove: authedProcedure.input(z.object({ id: idSchema("cap") })).mutation(({ ctx, input }) => callService(() => ctx.services.captures.remove(ctx.auth, input.id))),
  records: authedProcedure
    .input(recordsQuerySchema.omit({ format: true }).extend({ id: idSchema("cap"), headers: z.array(headerEqualsSchema).max(8).optional() }))
    .query(({ ctx, input }) => callService(() => ctx.services.captures.records(ctx.auth, input.id, input))),
  stats: authedProcedure
    .input(
      recordsQuerySchema.omit({ format: true, limit: true, cursor: true, order: true }).extend({
        id: idSchema("cap"),
        headers: z.array(headerEqualsSchema).max(8).optional(),
        header: z.string().max(256).optional(),
        bucketSeconds: z.number().int().min(1).max(86_400).default(60),
      }),
    )
    .query(({ ctx, input }) => callService(() => ctx.services.captures.stats(ctx.auth, input.id, input))),
} satisfies TRPCRouterRecord;

const publishedApiId = z.object({ id: idSchema("api") });
const publishedApisRouter = {
  create: authedProcedure.input(createPublishedApiInputSchema).mutation(({ ctx, input }) => callService(() => ctx.services.publishedApis.create(ctx.auth, input))),
  list: authedProcedure.input(pageQuerySchema).query(({ ctx, input }) => callService(() => ctx.services.publishedApis.list(ctx.auth, input))),
  get: authedProcedure.input(publishedApiId).query(({ ctx, input }) => callService(() => ctx.services.publishedApis.get(ctx.auth, input.id))),
  publish: authedProcedure.input(publishedApiId).mutation(({ ctx, input }) => callService(() => ctx.services.publishedApis.publish(ctx.auth, input.id))),
  deprecate: authedProcedure
    .input(deprecatePublishedApiInputSchema.extend({ id: idSchema("api") }))
    .mutation(({ ctx, input }) => callService(() => ctx.services.publishedApis.deprecate(ctx.auth, input.id, input))),
  retire: authedProcedure.input(publishedApiId).mutation(({ ctx, input }) => callService(() => ctx.services.publishedApis.retire(ctx.auth, input.id))),
  remove: authedProcedure.input(publishedApiId).mutation(({ ctx, input }) => callService(() => ctx.services.publishedApis.remove(ctx.auth, input.id))),
  createConsumer: authedProcedure
    .input(createConsumerInputSchema.extend({ id: idSchema("api") }))
    .mutation(({ ctx, input }) => callService(() => ctx.services.publishedApis.createConsumer(ctx.auth, input.id, input))),
  listConsumers: authedProcedure
    .input(pageQuerySchema.extend({ id: idSchema("api") }))
    .query(({ ctx, input }) => callService(() => ctx.services.publishedApis.listConsumers(ctx.auth, input.id, input))),
  revokeConsumer: authedProcedure
    .input(z.object({ id: idSchema("api"), consumerId: idSchema("apc") }))
    .mutation(({ ctx, input }) => callService(() => ctx.services.publishedApis.revokeConsumer(ctx.auth, input.id, input.consumerId))),
} satisfies TRPCRouterRecord;

export const appRouter = router({
  whoami: authedProcedure.query(({ ctx }) => callService(() => ctx.services.whoami(ctx.auth))),
  apiKeys: apiKeysRouter,
  tenants: tenantsRouter,
  audit: { list: authedProcedure.input(pageQuerySchema).query(({ ctx, input }) => callService(() => ctx.services.audit.list(ctx.auth, input))) } satisfies TRPCRouterRecord,
  agents: agentsRouter,
  agentUpgrades: agentUpgradesRouter,
  captures: capturesRouter,
  publishedApis: publishedApisRouter,
});

export type AppRouter = typeof appRouter;
export type RouterInputs = inferRouterInputs<AppRouter>;
export type RouterOutputs = inferRouterOutputs<AppRouter>;
