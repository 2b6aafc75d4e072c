import { createNatsAuthority } from "@hdrcap/local-services";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadOrCreateNatsAuthority } from "../src/cli/local-up.ts";

describe("local up's nats-authority.json", () => {
  const dir = mkdtempSync(join(tmpdir(), "hdrcap-local-authority-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("upgrades a file from before revocation support in place, keeping the application account", async () => {
    const old = await createNatsAuthority();
    const file = join(dir, "nats-authority.json");
    const legacy = { operatorJwt: old.operatorJwt, systemAccount: { publicKey: old.systemAccount.publicKey, jwt: old.systemAccount.jwt }, account: old.account };
    writeFileSync(file, JSON.stringify(legacy), { mode: 0o600 });
    const messages: string[] = [];

    const authority = await loadOrCreateNatsAuthority(file, (m) => messages.push(m));
    // Same key pair; its JWT is re-signed by the new operator signing key.
    expect({ publicKey: authority.account.publicKey, seed: authority.account.seed }).toEqual({ publicKey: old.account.publicKey, seed: old.account.seed });
    expect(authority.account.jwt).not.toBe(old.account.jwt);
    expect(authority.operatorSigningSeed).toMatch(/^SO/);
    expect(messages.join("\n")).toMatch(/upgraded .*same account key/);
    const saved = JSON.parse(readFileSync(file, "utf8"));
    expect(saved).toEqual({
      operatorJwt: authority.operatorJwt,
      operatorSigningSeed: authority.operatorSigningSeed,
      systemAccount: authority.systemAccount,
      systemUserCreds: authority.systemUserCreds,
      account: authority.account,
    });
    expect(statSync(file).mode & 0o777).toBe(0o600);

    // Loaded again: as saved, no second upgrade.
    const again = await loadOrCreateNatsAuthority(file, (m) => messages.push(m));
    expect(again.operatorJwt).toBe(authority.operatorJwt);
    expect(messages).toHaveLength(1);
  });

  it("creates a complete file when there is none", async () => {
    const file = join(dir, "fresh.json");
    const authority = await loadOrCreateNatsAuthority(file);
    expect(Object.keys(JSON.parse(readFileSync(file, "utf8"))).sort()).toEqual(["account", "operatorJwt", "operatorSigningSeed", "systemAccount", "systemUserCreds"]);
    expect(authority.systemAccount.seed).toMatch(/^SA/);
  });
});
