export * from "./errors.ts";
export * from "./scopes.ts";
export * from "./schemas.ts";
export * from "./records.ts";
export type { AuthContext, Services } from "./services.ts";
export { appRouter, type AppRouter, type RouterInputs, type RouterOutputs } from "./trpc/router.ts";
export type { TrpcContext } from "./trpc/init.ts";
