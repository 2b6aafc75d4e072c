export { freePort, waitUntil } from "./ports.ts";
export { startProcess, type ManagedProcess } from "./process.ts";
export { startPostgres, ensureDatabase, findPostgresBin, type PostgresServer } from "./postgres.ts";
export { startNats, findNatsServer, type NatsServer } from "./nats.ts";
export {
  applicationAccountClaims,
  createNatsAuthority,
  encodeApplicationAccountJwt,
  mintUserCreds,
  mintUserJwt,
  natsAuthorityFromState,
  operatorSigningKeys,
  stateOf,
  upgradeNatsAuthorityState,
  type LegacyNatsAuthorityState,
  type NatsAuthority,
  type NatsAuthorityState,
  type UserPermissions,
} from "./nats-auth.ts";
