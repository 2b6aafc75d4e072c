/**
 * NATS decentralised auth for hdrcap: an operator, a system account and one
 * application account whose key signs every user JWT. The control plane keeps the
 * account seed and mints per-agent user JWTs whose permissions confine each agent
 * to its own subjects; nats-server verifies them with no restart when agents join.
 */
import { Algorithms, encodeAccount, encodeOperator, encodeUser, fmtCreds } from "@nats-io/jwt";
import { createAccount, createOperator, createUser, fromPublic, fromSeed, type KeyPair } from "@nats-io/nkeys";

export interface NatsAuthority extends NatsAuthorityState {
  /** nats-server configuration lines enabling operator mode with a memory resolver. */
  serverConfig(): string;
}

/** Persistable form: the seeds and JWTs, so a restarted server keeps the same accounts. */
export interface NatsAuthorityState {
  operatorJwt: string;
  systemAccount: { publicKey: string; jwt: string };
  account: { publicKey: string; jwt: string; seed: string };
}

export function natsAuthorityFromState(state: NatsAuthorityState): NatsAuthority {
  return { ...state, serverConfig: () => serverConfigFor(state) };
}

function serverConfigFor(state: NatsAuthorityState): string {
  return [
    `operator: ${state.operatorJwt}`,
    `system_account: ${state.systemAccount.publicKey}`,
    "resolver: MEMORY",
    "resolver_preload: {",
    `  ${state.systemAccount.publicKey}: ${state.systemAccount.jwt}`,
    `  ${state.account.publicKey}: ${state.account.jwt}`,
    "}",
  ].join("\n");
}

export async function createNatsAuthority(): Promise<NatsAuthority> {
  const operator = createOperator();
  const system = createAccount();
  const account = createAccount();
  const opts = { algorithm: Algorithms.v2 };
  const operatorJwt = await encodeOperator("hdrcap", operator, { system_account: system.getPublicKey() }, opts);
  const systemJwt = await encodeAccount("SYS", system, {}, { ...opts, signer: operator });
  const accountJwt = await encodeAccount(
    "hdrcap",
    account,
    {
      limits: {
        // -1: unlimited. JetStream is enabled for this account by giving it storage.
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
    },
    { ...opts, signer: operator },
  );
  const accountSeed = new TextDecoder().decode(account.getSeed());
  return natsAuthorityFromState({
    operatorJwt,
    systemAccount: { publicKey: system.getPublicKey(), jwt: systemJwt },
    account: { publicKey: account.getPublicKey(), jwt: accountJwt, seed: accountSeed },
  });
}

export interface UserPermissions {
  pub?: { allow?: string[]; deny?: string[] };
  sub?: { allow?: string[]; deny?: string[] };
  /** Allow publishing replies to requests received (max replies per request). */
  allowResponses?: boolean;
}

/** A user JWT for `userPublicKey` (the user keeps its seed), signed by the account key. */
export async function mintUserJwt(accountSeed: string, name: string, userPublicKey: string, permissions: UserPermissions = {}): Promise<string> {
  const signer: KeyPair = fromSeed(new TextEncoder().encode(accountSeed));
  return encodeUser(
    name,
    fromPublic(userPublicKey),
    signer,
    {
      ...(permissions.pub ? { pub: permissions.pub } : {}),
      ...(permissions.sub ? { sub: permissions.sub } : {}),
      ...(permissions.allowResponses ? { resp: { max: 1, ttl: 0 } } : {}),
    },
    { algorithm: Algorithms.v2 },
  );
}

/** A fresh user (key pair + JWT) as a .creds document, e.g. for the control plane's own connection. */
export async function mintUserCreds(accountSeed: string, name: string, permissions: UserPermissions = {}): Promise<string> {
  const user = createUser();
  const jwt = await mintUserJwt(accountSeed, name, user.getPublicKey(), permissions);
  return new TextDecoder().decode(fmtCreds(jwt, user));
}
