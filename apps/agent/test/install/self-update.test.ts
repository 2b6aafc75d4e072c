/**
 * Self-update against a real HTTP server and a fake install root laid out as install.sh
 * does: a good bundle is switched to atomically (config updated, older versions pruned); a
 * bad checksum, a failed download or a bundle holding another version change nothing.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AgentUpgradeCommand } from "@hdrcap/api/nats";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { pino } from "pino";
import { createUpgradeHandler } from "../../src/daemon/upgrade-handler.ts";
import { installedBundle, restartMethod, RESTART_EXIT_CODE, selfUpdate, SelfUpdateError } from "../../src/install/self-update.ts";

const scratch = mkdtempSync(join(tmpdir(), "hdrcap-self-update-"));
const served = join(scratch, "served");
let server: Server;
let url: string;

/** A bundle tarball as scripts/build-agent-bundle.mjs lays it out (the runtime is a stub that runs). */
function makeBundle(version: string, { holds = version } = {}): { file: string; sha256: string; size: number } {
  const work = mkdtempSync(join(scratch, "bundle-"));
  const top = join(work, `hdrcap-agent-${version}`);
  mkdirSync(join(top, "bin"), { recursive: true });
  mkdirSync(join(top, "node/bin"), { recursive: true });
  mkdirSync(join(top, "agent"), { recursive: true });
  writeFileSync(join(top, "VERSION"), `${holds}\n`);
  writeFileSync(join(top, "bin/hdrcap-agent"), "#!/bin/sh\nexit 0\n");
  writeFileSync(join(top, "node/bin/node"), "#!/bin/sh\nexit 0\n");
  chmodSync(join(top, "bin/hdrcap-agent"), 0o755);
  chmodSync(join(top, "node/bin/node"), 0o755);
  writeFileSync(join(top, "agent/main.js"), "");
  const file = `agent-${version}-linux-x64.tar.gz`;
  execFileSync("tar", ["-czf", join(served, file), "-C", work, `hdrcap-agent-${version}`]);
  rmSync(work, { recursive: true, force: true });
  const bytes = readFileSync(join(served, file));
  return { file, sha256: createHash("sha256").update(bytes).digest("hex"), size: bytes.length };
}

let root: string;
let configPath: string;
const command = (version: string, b: { file: string; sha256: string; size: number }): AgentUpgradeCommand => ({ v: 1, type: "upgrade", upgradeId: "upg_test00000001", version, ...b });
const opts = () => ({ controlPlaneUrl: url, configPath, bundle: installedBundle(join(root, "1.0.0/agent/main.js"))! });
const tree = () => readdirSync(root).sort();

beforeAll(async () => {
  mkdirSync(served);
  server = createServer((req, res) => {
    const name = decodeURIComponent((req.url ?? "").replace(/^\/bundles\//, ""));
    const path = join(served, name);
    if (!/^agent-[\w.-]+\.tar\.gz$/.test(name) || !existsSync(path)) return res.writeHead(404).end();
    res.writeHead(200, { "content-type": "application/gzip" }).end(readFileSync(path));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  rmSync(scratch, { recursive: true, force: true });
});

beforeEach(() => {
  root = mkdtempSync(join(scratch, "opt-"));
  for (const v of ["0.9.0", "1.0.0"]) {
    mkdirSync(join(root, v, "agent"), { recursive: true });
    writeFileSync(join(root, v, "VERSION"), `${v}\n`);
  }
  symlinkSync("1.0.0", join(root, "current"));
  writeFileSync(join(root, "hdrcap-agent-supervise"), "#!/bin/sh\n");
  configPath = join(scratch, `agent-${Date.now()}.json`);
  writeFileSync(configPath, JSON.stringify({ controlPlaneUrl: url, stateDir: "/var/lib/hdrcap", labels: { env: "test" }, caFile: null, installedVersion: "1.0.0" }), { mode: 0o600 });
});

describe("installedBundle", () => {
  it("finds the bundle the running main.js belongs to, and nothing outside an installed layout", () => {
    expect(installedBundle(join(root, "1.0.0/agent/main.js"))).toEqual({ installRoot: root, bundleDir: join(root, "1.0.0"), version: "1.0.0" });
    expect(installedBundle(join(scratch, "nowhere/dist/main.js"))).toBeNull();
    expect(installedBundle(undefined)).toBeNull();
  });
});

describe("selfUpdate", () => {
  it("verifies, unpacks and switches `current` to the new version, records it and prunes versions older than the running one", async () => {
    const b = makeBundle("1.1.0");
    const result = await selfUpdate(command("1.1.0", b), opts());
    expect(result).toEqual({ fromVersion: "1.0.0", toVersion: "1.1.0", pruned: ["0.9.0"] });
    expect(readlinkSync(join(root, "current"))).toBe("1.1.0");
    expect(readFileSync(join(root, "current/VERSION"), "utf8").trim()).toBe("1.1.0");
    expect(tree()).toEqual(["1.0.0", "1.1.0", "current", "hdrcap-agent-supervise"]);
    const config = JSON.parse(readFileSync(configPath, "utf8"));
    expect(config).toMatchObject({ installedVersion: "1.1.0", labels: { env: "test" } });
    expect(statSync(configPath).mode & 0o777).toBe(0o600);
  });

  it("refuses a bundle whose checksum does not match, before changing anything", async () => {
    const b = makeBundle("1.2.0");
    const before = tree();
    const err = await selfUpdate(command("1.2.0", { ...b, sha256: "0".repeat(64) }), opts()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SelfUpdateError);
    expect((err as Error).message).toMatch(/^checksum mismatch for agent-1\.2\.0-linux-x64\.tar\.gz: expected sha256 0{64}, got [0-9a-f]{64}; .*still running 1\.0\.0/);
    expect(tree()).toEqual(before);
    expect(readlinkSync(join(root, "current"))).toBe("1.0.0");
    expect(JSON.parse(readFileSync(configPath, "utf8")).installedVersion).toBe("1.0.0");
  });

  it("reports a failed download and a bundle that holds another version, changing nothing", async () => {
    const before = tree();
    await expect(selfUpdate(command("9.9.9", { file: "agent-9.9.9-linux-x64.tar.gz", sha256: "a".repeat(64), size: 10 }), opts())).rejects.toThrow(/cannot download .*HTTP 404/);
    const wrong = makeBundle("1.3.0", { holds: "6.6.6" });
    await expect(selfUpdate(command("1.3.0", wrong), opts())).rejects.toThrow(/does not hold agent 1\.3\.0/);
    const unreachable = { ...opts(), controlPlaneUrl: "http://127.0.0.1:1" };
    await expect(selfUpdate(command("1.1.0", makeBundle("1.1.0")), unreachable)).rejects.toThrow(/cannot download/);
    expect(tree()).toEqual(before);
  });

  it("refuses a download larger than announced", async () => {
    const b = makeBundle("1.4.0");
    await expect(selfUpdate(command("1.4.0", { ...b, size: 0 }), opts())).rejects.toThrow(/larger than the 0 bytes announced/);
  });

  it("refuses without a `current` link (not installed by install.sh)", async () => {
    rmSync(join(root, "current"));
    await expect(selfUpdate(command("1.1.0", makeBundle("1.1.0")), opts())).rejects.toThrow(/not installed by install\.sh/);
  });
});

describe("restartMethod", () => {
  it("exits with the supervisor's restart code unless it runs as a systemd unit", () => {
    expect(restartMethod("0::/user.slice/session-1.scope\n", {})).toEqual({ kind: "exit", code: RESTART_EXIT_CODE });
    expect(restartMethod("0::/system.slice/hdrcap-agent.service\n", {})).toEqual({ kind: "exit", code: 75 });
    const underSystemd = restartMethod("0::/system.slice/hdrcap-agent.service\n", { INVOCATION_ID: "abc" });
    expect(underSystemd).toEqual(existsSync("/run/systemd/system") ? { kind: "systemd", unit: "hdrcap-agent.service" } : { kind: "exit", code: 75 });
  });
});

describe("the upgrade command handler", () => {
  const handler = (exits: number[]) =>
    createUpgradeHandler({ ...opts(), logger: pino({ level: "silent" }), exit: (code) => exits.push(code) });

  it("replies with the new version first, then exits with the restart code (no systemd here)", async () => {
    const exits: number[] = [];
    const onUpgrade = handler(exits);
    const b = makeBundle("1.5.0");
    const [first, repeated] = await Promise.all([onUpgrade(command("1.5.0", b)), onUpgrade(command("1.5.0", b))]);
    expect(first).toEqual({ v: 1, ok: true, captures: [], upgradedTo: "1.5.0" });
    expect(repeated).toBe(first);
    expect(exits).toEqual([]);
    await new Promise((r) => setTimeout(r, 400));
    expect(exits).toEqual([restartMethod().kind === "exit" ? RESTART_EXIT_CODE : -1].filter((c) => c >= 0));
  });

  it("answers a failure with its reason and does not restart; the same version is a no-op", async () => {
    const exits: number[] = [];
    const onUpgrade = handler(exits);
    const refused = await onUpgrade(command("1.6.0", { ...makeBundle("1.6.0"), sha256: "1".repeat(64) }));
    expect(refused).toMatchObject({ v: 1, ok: false, captures: [] });
    expect(refused.error).toMatch(/^checksum mismatch/);
    expect(await onUpgrade(command("1.0.0", makeBundle("1.0.0")))).toEqual({ v: 1, ok: true, captures: [], upgradedTo: "1.0.0" });
    await new Promise((r) => setTimeout(r, 400));
    expect(exits).toEqual([]);
    expect(readlinkSync(join(root, "current"))).toBe("1.0.0");
  });
});
