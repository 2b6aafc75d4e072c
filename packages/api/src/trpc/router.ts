/** The tRPC router: one procedure per service call, same inputs as the REST routes. */
import type { inferRouterInputs, inferRouterOutputs, TRPCRouterRecord } from "@trpc/server";
import { z } from "zod";
import { createApiKeyInputSchema, createTenantInputSchema, idSchema, pageQuerySchema } from "../schemas.ts";
import { authedProcedure, callService, router } from "./init.ts";

const apiKeysRouter = {
  create: authedProcedure.input(createApiKeyInputSchema).mutation(({ ctx, input }) => callService(() => ctx.services.apiKeys.create(ctx.auth, input))),
  list: authedProcedure.input(pageQuerySchema).query(({ ctx, input }) => callService(() => ctx.services.apiKeys.list(ctx.auth, input))),
  revoke: authedProcedure.input(z.object({ id: idSchema("key") })).mutation(({ ctx, input }) => callService(() => ctx.services.apiKeys.revoke(ctx.auth, input.id))),
} satisfies TRPCRouterRecord;

const tenantsRouter = {
  create: authedProcedure.input(createTenantInputSchema).mutation(({ ctx, input }) => callService(() => ctx.services.tenants.create(ctx.auth, input))),
  list: authedProcedure.input(pageQuerySchema).query(({ ctx, input }) => callService(() => ctx.services.tenants.list(ctx.auth, input))),
} satisfies TRPCRouterRecord;

export const appRouter = router({
  whoami: authedProcedure.query(({ ctx }) => callService(() => ctx.services.whoami(ctx.auth))),
  apiKeys: apiKeysRouter,
  tenants: tenantsRouter,
});

export type AppRouter = typeof appRouter;
export type RouterInputs = inferRouterInputs<AppRouter>;
export type RouterOutputs = inferRouterOutputs<AppRouter>;
