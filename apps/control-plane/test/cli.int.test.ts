import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCliHarness, type CliHarness } from "./cli-harness.ts";

// The CLI as a user runs it (a separate process), against the real app over HTTP.
describe("hdrcap CLI", () => {
  let cli: CliHarness;
  let h: CliHarness["h"];
  const hdrcap = (...args: string[]) => cli.hdrcap(...args);

  beforeAll(async () => {
    cli = await startCliHarness();
    ({ h } = cli);
  });
  afterAll(async () => cli.close());

  it("creates, lists, shows and stops captures, in tables and as JSON", async () => {
    const created = JSON.parse((await hdrcap("captures", "create", "cli-demo", "--port", "8080,9090", "--role", "server", "--redact", "x-session", "--json")).stdout);
    expect(created).toMatchObject({ name: "cli-demo", status: "pending", filter: { ports: [8080, 9090], role: "server" }, headers: { redact: ["x-session"] } });

    const table = (await hdrcap("captures", "list")).stdout;
    expect(table.split("\n")[0]).toMatch(/^ID\s+NAME\s+STATUS\s+AGENTSRUNNING\s+STORED\s+CREATEDAT/);
    expect(table).toContain(created.id);

    const shown = JSON.parse((await hdrcap("captures", "get", created.id, "--json")).stdout);
    expect(shown.id).toBe(created.id);

    const stopped = (await hdrcap("captures", "stop", created.id)).stdout;
    expect(stopped).toMatch(new RegExp(`${created.id} "cli-demo" stopping \\(stopped by user\\)`));
  });

  it("reports API errors with the field that was wrong and a non-zero exit", async () => {
    const err = await hdrcap("captures", "create", "bad", "--port", "70000").catch((e: { code: number; stderr: string }) => e);
    expect((err as { code: number }).code).toBe(1);
    expect((err as { stderr: string }).stderr).toMatch(/400 BAD_REQUEST[\s\S]*body\.filter\.ports\.0/);
  });

  it("lists agents and keys", async () => {
    expect((await hdrcap("agents", "list")).stdout).toMatch(/^ID\s+HOSTNAME\s+STATUS/);
    expect((await hdrcap("keys", "list")).stdout).toContain(h.operatorKey.slice(0, 11));
  });
});
