/**
 * NATS decentralised auth for hdrcap: an operator (with a signing key), a system account
 * (with a user the control plane pushes account JWT updates as) and one application account
 * whose key signs every user JWT. The control plane keeps the account seed and mints
 * per-agent user JWTs whose permissions confine each agent to its own subjects; nats-server
 * verifies them with no restart when agents join. nats-server runs the NATS-based "full"
 * resolver, so a re-signed application account JWT carrying `revocations` (pushed on
 * `$SYS.REQ.CLAIMS.UPDATE`) cuts a removed agent off at once.
 */
import { Algorithms, decode, encodeAccount, encodeOperator, encodeUser, fmtCreds, type Account } from "@nats-io/jwt";
import { createAccount, createOperator, createUser, fromPublic, fromSeed, type KeyPair } from "@nats-io/nkeys";

export interface NatsAuthority extends NatsAuthorityState {
  /**
   * nats-server configuration lines enabling operator mode with the full resolver. The
   * resolver keeps account JWTs in `jwtDir`; the default, relative `jwt`, is resolved against
   * nats-server's working directory, which startNats sets to its own directory.
   */
  serverConfig(opts?: { jwtDir?: string }): string;
}

/** Persistable form: the seeds and JWTs, so a restarted server keeps the same accounts. */
export interface NatsAuthorityState {
  operatorJwt: string;
  /**
   * Seed of the operator signing key (listed in the operator JWT's `signing_keys`) that signs
   * account JWTs. The operator's identity key is not kept: replacing the operator (see
   * upgradeNatsAuthorityState) is how it is rotated.
   */
  operatorSigningSeed: string;
  systemAccount: { publicKey: string; jwt: string; seed: string };
  /** A system-account user (.creds) allowed only to push account JWT updates. */
  systemUserCreds: string;
  account: { publicKey: string; jwt: string; seed: string };
}

/** What nats-authority.json held before revocation support: no signing key, no system user. */
export interface LegacyNatsAuthorityState {
  operatorJwt: string;
  systemAccount: { publicKey: string; jwt: string };
  account: { publicKey: string; jwt: string; seed: string };
}

const JWT_OPTS = { algorithm: Algorithms.v2 } as const;
const APPLICATION_ACCOUNT_NAME = "hdrcap";
const SYSTEM_USER_PERMISSIONS: UserPermissions = {
  pub: { allow: ["$SYS.REQ.CLAIMS.UPDATE", "$SYS.REQ.ACCOUNT.*.CLAIMS.UPDATE"] },
  sub: { allow: ["_INBOX.>"] },
};

export function natsAuthorityFromState(state: NatsAuthorityState): NatsAuthority {
  return { ...state, serverConfig: (opts) => serverConfigFor(state, opts?.jwtDir ?? "jwt") };
}

function serverConfigFor(state: NatsAuthorityState, jwtDir: string): string {
  return [
    `operator: ${state.operatorJwt}`,
    `system_account: ${state.systemAccount.publicKey}`,
    // allow_delete false: nobody can make the server forget an account (and its revocations).
    // interval: how often servers of a cluster reconcile their JWT directories.
    `resolver: { type: full, dir: ${JSON.stringify(jwtDir)}, allow_delete: false, interval: "2m" }`,
    // nats-server 2.9 stores these over its directory at every start, even over a newer pushed
    // JWT: a restarted server forgets the revocations until the control plane pushes them again
    // (on reconnect, and periodically from the scheduler role).
    "resolver_preload: {",
    `  ${state.systemAccount.publicKey}: ${state.systemAccount.jwt}`,
    `  ${state.account.publicKey}: ${state.account.jwt}`,
    "}",
  ].join("\n");
}

/**
 * The application account's claims: unlimited (JetStream enabled by giving it storage) plus
 * the revoked agent users, `{ userPublicKey: unix seconds }`. A user JWT issued at or before
 * its entry's time is refused, and its connections are closed when the JWT arrives.
 */
export function applicationAccountClaims(revocations: Record<string, number> = {}): Partial<Account> {
  return {
    limits: {
      // -1: unlimited.
      subs: -1,
      data: -1,
      payload: -1,
      imports: -1,
      exports: -1,
      wildcards: true,
      conn: -1,
      leaf: -1,
      mem_storage: -1,
      disk_storage: -1,
      streams: -1,
      consumer: -1,
    } as never,
    ...(Object.keys(revocations).length ? { revocations } : {}),
  };
}

/** The application account JWT (its public key from `accountPublicKey`), signed by the operator signing key. */
export async function encodeApplicationAccountJwt(accountPublicKey: string, operatorSigningSeed: string, revocations: Record<string, number> = {}): Promise<string> {
  // The JWT library would also let the account sign itself, which nats-server (operator mode) ignores.
  if (!operatorSigningSeed.startsWith("SO")) throw new Error("the application account JWT must be signed by an operator signing key (seed SO…)");
  return encodeAccount(APPLICATION_ACCOUNT_NAME, fromPublic(accountPublicKey), applicationAccountClaims(revocations), {
    ...JWT_OPTS,
    signer: keyPairFromSeed(operatorSigningSeed),
  });
}

/**
 * A new operator, signing key, system account and system user. The application account is
 * new too unless `accountSeed` is given: keeping it keeps every user JWT it signed valid.
 */
export async function createNatsAuthority({ accountSeed }: { accountSeed?: string } = {}): Promise<NatsAuthority> {
  const operator = createOperator();
  const signingKey = createOperator();
  const system = createAccount();
  const account = accountSeed ? keyPairFromSeed(accountSeed) : createAccount();
  const operatorJwt = await encodeOperator(
    "hdrcap",
    operator,
    { system_account: system.getPublicKey(), signing_keys: [signingKey.getPublicKey()] },
    JWT_OPTS,
  );
  // Without limits an account admits no connections: the system user needs a few.
  const systemLimits = { subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 } as never;
  const systemJwt = await encodeAccount("SYS", system, { limits: systemLimits }, { ...JWT_OPTS, signer: signingKey });
  const signingSeed = seedOf(signingKey);
  const accountJwt = await encodeApplicationAccountJwt(account.getPublicKey(), signingSeed);
  return natsAuthorityFromState({
    operatorJwt,
    operatorSigningSeed: signingSeed,
    systemAccount: { publicKey: system.getPublicKey(), jwt: systemJwt, seed: seedOf(system) },
    systemUserCreds: await mintUserCreds(seedOf(system), "hdrcap-control-plane-sys", SYSTEM_USER_PERMISSIONS),
    account: { publicKey: account.getPublicKey(), jwt: accountJwt, seed: seedOf(account) },
  });
}

/**
 * Brings a persisted state up to date. A state from before revocation support has no
 * operator signing key (nor the operator's seed to add one) and no system user, so it gets a
 * new operator, signing key and system account around the same application account key pair:
 * agents' user JWTs, signed by that account, stay valid once nats-server restarts with the
 * new configuration.
 */
export async function upgradeNatsAuthorityState(raw: NatsAuthorityState | LegacyNatsAuthorityState): Promise<{ state: NatsAuthorityState; upgraded: boolean }> {
  if (isCurrentState(raw)) return { state: raw, upgraded: false };
  if (!raw.account?.seed) throw new Error("the NATS authority state has no application account seed: it cannot be upgraded");
  const authority = await createNatsAuthority({ accountSeed: raw.account.seed });
  if (authority.account.publicKey !== raw.account.publicKey) {
    throw new Error("the NATS authority state's account seed does not match its account public key");
  }
  return { state: stateOf(authority), upgraded: true };
}

export function stateOf(authority: NatsAuthorityState): NatsAuthorityState {
  const { operatorJwt, operatorSigningSeed, systemAccount, systemUserCreds, account } = authority;
  return { operatorJwt, operatorSigningSeed, systemAccount, systemUserCreds, account };
}

function isCurrentState(s: NatsAuthorityState | LegacyNatsAuthorityState): s is NatsAuthorityState {
  const c = s as Partial<NatsAuthorityState>;
  return Boolean(c.operatorSigningSeed && c.systemUserCreds && c.systemAccount?.seed && c.account?.seed);
}

/** The signing keys an operator JWT lists (for checks: an account JWT must be signed by one). */
export function operatorSigningKeys(operatorJwt: string): string[] {
  const keys = decode<{ signing_keys?: unknown[] }>(operatorJwt).nats.signing_keys ?? [];
  return keys.map((k) => (typeof k === "string" ? k : (k as { key: string }).key));
}

export interface UserPermissions {
  pub?: { allow?: string[]; deny?: string[] };
  sub?: { allow?: string[]; deny?: string[] };
  /** Allow publishing replies to requests received (max replies per request). */
  allowResponses?: boolean;
}

/** A user JWT for `userPublicKey` (the user keeps its seed), signed by the account key. */
export async function mintUserJwt(accountSeed: string, name: string, userPublicKey: string, permissions: UserPermissions = {}): Promise<string> {
  return encodeUser(
    name,
    fromPublic(userPublicKey),
    keyPairFromSeed(accountSeed),
    {
      ...(permissions.pub ? { pub: permissions.pub } : {}),
      ...(permissions.sub ? { sub: permissions.sub } : {}),
      ...(permissions.allowResponses ? { resp: { max: 1, ttl: 0 } } : {}),
    },
    JWT_OPTS,
  );
}

/** A fresh user (key pair + JWT) as a .creds document, e.g. for the control plane's own connection. */
export async function mintUserCreds(accountSeed: string, name: string, permissions: UserPermissions = {}): Promise<string> {
  const user = createUser();
  const jwt = await mintUserJwt(accountSeed, name, user.getPublicKey(), permissions);
  return new TextDecoder().decode(fmtCreds(jwt, user));
}

function keyPairFromSeed(seed: string): KeyPair {
  return fromSeed(new TextEncoder().encode(seed));
}

function seedOf(kp: KeyPair): string {
  return new TextDecoder().decode(kp.getSeed());
}
