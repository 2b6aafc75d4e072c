/** `hdrcap agents install-command` as a user runs it (the built CLI), against the real app over HTTP. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hashApiKey } from "../../src/services/ids.ts";
import { startCliHarness, type CliHarness } from "../cli-harness.ts";

describe("hdrcap agents install-command", () => {
  let cli: CliHarness;
  let h: CliHarness["h"];
  let url: string;
  const hdrcap = (...args: string[]) => cli.hdrcap(...args);

  beforeAll(async () => {
    cli = await startCliHarness();
    ({ h, url } = cli);
  });
  afterAll(async () => cli.close());

  it("prints the ready line with a fresh token that carries the labels, uses and expiry asked for", async () => {
    const { stdout, stderr } = await hdrcap("agents", "install-command", "--labels", "env=prod,team=edge", "--max-uses", "25", "--expires-in", "2h");
    const m = /^curl -fsSL (\S+)\/install\.sh \| sudo sh -s -- --token (hcet_\S+)\n$/.exec(stdout);
    expect(m, stdout).not.toBeNull();
    expect(m![1]).toBe(url);
    expect(stderr).toMatch(/25 uses, expires .*labels \{"env":"prod","team":"edge"\}/);
    const row = await h.db.db.selectFrom("enrollment_tokens").selectAll().where("hash", "=", hashApiKey(m![2]!)).executeTakeFirstOrThrow();
    expect(row).toMatchObject({ labels: { env: "prod", team: "edge" }, max_uses: 25, uses: 0 });
    expect(Math.abs(row.expires_at.getTime() - Date.now() - 2 * 3600_000)).toBeLessThan(60_000);
  });

  it("uses --public-url for the line when hosts reach the control plane elsewhere", async () => {
    const out = JSON.parse((await hdrcap("agents", "install-command", "--public-url", "https://hdrcap.example.com/", "--json")).stdout);
    expect(out.command).toMatch(/^curl -fsSL https:\/\/hdrcap\.example\.com\/install\.sh \| sudo sh -s -- --token hcet_/);
    expect(out.enrollmentToken).toMatchObject({ maxUses: 1, labels: {} });
  });

  it("refuses a malformed duration before calling the API", async () => {
    const err = (await hdrcap("agents", "install-command", "--expires-in", "soon").catch((e: unknown) => e)) as { code: number; stderr: string };
    expect(err.code).toBe(1);
    expect(err.stderr).toMatch(/--expires-in: "soon" is not a duration/);
  });
});
