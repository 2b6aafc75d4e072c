import { createUser } from "@nats-io/nkeys";
import { connect, credsAuthenticator, jwtAuthenticator } from "@nats-io/transport-node";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { startNats, type NatsServer } from "../src/nats.ts";
import { createNatsAuthority, encodeApplicationAccountJwt, mintUserJwt, natsAuthorityFromState, upgradeNatsAuthorityState } from "../src/nats-auth.ts";

// The upgrade of a pre-revocation authority state against a real nats-server: an agent
// enrolled before the upgrade still connects after it, and the new signing key can revoke it.

describe("NATS authority upgrade", () => {
  const dir = mkdtempSync(join(tmpdir(), "hdrcap-nats-auth-"));
  let nats: NatsServer | undefined;
  afterAll(async () => {
    await nats?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("keeps agents enrolled before the upgrade connected, and lets the new signing key revoke them", async () => {
    const old = await createNatsAuthority();
    const agent = createUser();
    const agentJwt = await mintUserJwt(old.account.seed, "agent-before-upgrade", agent.getPublicKey());
    const legacy = { operatorJwt: old.operatorJwt, systemAccount: { publicKey: old.systemAccount.publicKey, jwt: old.systemAccount.jwt }, account: old.account };

    const { state } = await upgradeNatsAuthorityState(legacy);
    nats = await startNats({ dir, extraConfig: natsAuthorityFromState(state).serverConfig() });
    const connectAgent = () => connect({ servers: nats!.url, authenticator: jwtAuthenticator(agentJwt, agent.getSeed()), maxReconnectAttempts: 0 });
    const nc = await connectAgent();
    await nc.flush();

    const sys = await connect({ servers: nats.url, authenticator: credsAuthenticator(new TextEncoder().encode(state.systemUserCreds)) });
    const jwt = await encodeApplicationAccountJwt(state.account.publicKey, state.operatorSigningSeed, { [agent.getPublicKey()]: Math.floor(Date.now() / 1000) });
    const reply = (await sys.request("$SYS.REQ.CLAIMS.UPDATE", jwt, { timeout: 3000 })).json<{ data?: { code: number } }>();
    expect(reply.data?.code).toBe(200);
    await expect(nc.closed()).resolves.toBeInstanceOf(Error);
    await expect(connectAgent()).rejects.toThrow(/Authorization Violation/);
    await sys.close();
  });
});
