import { decode, parseCreds } from "@nats-io/jwt";
import { createUser, fromPublic } from "@nats-io/nkeys";
import { describe, expect, it } from "vitest";
import {
  createNatsAuthority,
  encodeApplicationAccountJwt,
  mintUserJwt,
  operatorSigningKeys,
  stateOf,
  upgradeNatsAuthorityState,
  type LegacyNatsAuthorityState,
} from "../src/nats-auth.ts";

type Claims = { iss: string; sub: string; iat: number; nats: Record<string, any> };
const claims = (jwt: string) => decode(jwt) as unknown as Claims;

/** The JWT's signature verifies against its issuer's public key. */
function signedByIssuer(jwt: string): boolean {
  const [header, payload, signature] = jwt.split(".");
  return fromPublic(claims(jwt).iss).verify(new TextEncoder().encode(`${header}.${payload}`), Buffer.from(signature!, "base64url"));
}

describe("NATS authority", () => {
  it("has an operator signing key that signs both accounts, and a system user confined to claim updates", async () => {
    const authority = await createNatsAuthority();
    const signingKeys = operatorSigningKeys(authority.operatorJwt);
    expect(signingKeys).toHaveLength(1);
    expect(claims(authority.operatorJwt).nats.system_account).toBe(authority.systemAccount.publicKey);
    for (const jwt of [authority.account.jwt, authority.systemAccount.jwt]) {
      expect(claims(jwt).iss).toBe(signingKeys[0]);
      expect(signedByIssuer(jwt)).toBe(true);
    }
    const sysUser = claims((await parseCreds(new TextEncoder().encode(authority.systemUserCreds))).jwt);
    expect(sysUser.iss).toBe(authority.systemAccount.publicKey);
    expect(sysUser.nats.pub.allow).toEqual(["$SYS.REQ.CLAIMS.UPDATE", "$SYS.REQ.ACCOUNT.*.CLAIMS.UPDATE"]);
  });

  it("builds the application account JWT with revocations: same account key and claims, signed by the operator signing key", async () => {
    const authority = await createNatsAuthority();
    const revokedUser = createUser().getPublicKey();
    const jwt = await encodeApplicationAccountJwt(authority.account.publicKey, authority.operatorSigningSeed, { [revokedUser]: 1_800_000_000 });
    const c = claims(jwt);
    expect(c.sub).toBe(authority.account.publicKey);
    expect(c.iss).toBe(operatorSigningKeys(authority.operatorJwt)[0]);
    expect(signedByIssuer(jwt)).toBe(true);
    expect(c.nats.revocations).toEqual({ [revokedUser]: 1_800_000_000 });
    // Everything else is what the account had without revocations.
    const { revocations: _, ...rest } = c.nats;
    expect(rest).toEqual(claims(authority.account.jwt).nats);
    expect(claims(authority.account.jwt).nats.revocations).toBeUndefined();
  });

  it("refuses to sign the account JWT with anything but an operator key", async () => {
    const authority = await createNatsAuthority();
    await expect(encodeApplicationAccountJwt(authority.account.publicKey, authority.account.seed)).rejects.toThrow(/operator signing key/);
  });

  it("upgrades a state from before revocation support around the same account key, so agents' JWTs stay valid", async () => {
    const old = await createNatsAuthority();
    const legacy: LegacyNatsAuthorityState = {
      operatorJwt: old.operatorJwt,
      systemAccount: { publicKey: old.systemAccount.publicKey, jwt: old.systemAccount.jwt },
      account: old.account,
    };
    const agentJwt = await mintUserJwt(old.account.seed, "agent", createUser().getPublicKey());

    const { state, upgraded } = await upgradeNatsAuthorityState(legacy);
    expect(upgraded).toBe(true);
    expect(state.account.publicKey).toBe(old.account.publicKey);
    expect(state.account.seed).toBe(old.account.seed);
    expect(claims(agentJwt).iss).toBe(state.account.publicKey);
    expect(state.operatorJwt).not.toBe(old.operatorJwt);
    expect(operatorSigningKeys(state.operatorJwt)).toContain(claims(state.account.jwt).iss);
    expect(state.systemAccount.seed).toMatch(/^SA/);
    expect(state.systemUserCreds).toContain("BEGIN NATS USER JWT");

    // A current state is left as it is.
    expect(await upgradeNatsAuthorityState(state)).toEqual({ state, upgraded: false });
    expect(stateOf(await createNatsAuthority())).not.toHaveProperty("serverConfig");
  });

  it("refuses to upgrade a state whose seed is not its account's", async () => {
    const a = await createNatsAuthority();
    const b = await createNatsAuthority();
    await expect(upgradeNatsAuthorityState({ operatorJwt: a.operatorJwt, systemAccount: a.systemAccount, account: { ...a.account, seed: b.account.seed } })).rejects.toThrow(/does not match/);
  });

  it("configures the full resolver in the given directory, preloading both accounts", async () => {
    const authority = await createNatsAuthority();
    const conf = authority.serverConfig({ jwtDir: "/var/lib/nats/jwt" });
    expect(conf).toContain('resolver: { type: full, dir: "/var/lib/nats/jwt", allow_delete: false, interval: "2m" }');
    expect(conf).toContain(`${authority.account.publicKey}: ${authority.account.jwt}`);
    expect(conf).toContain(`${authority.systemAccount.publicKey}: ${authority.systemAccount.jwt}`);
    expect(authority.serverConfig()).toContain('dir: "jwt"');
  });
});
