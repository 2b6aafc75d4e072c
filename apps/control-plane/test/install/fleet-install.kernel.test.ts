/**
 * Fleet install on a fresh host: a minimal Debian bookworm (debootstrap --variant=minbase,
 * plus curl) entered with chroot in this machine's network namespace, against a real control
 * plane (Postgres + nats-server in operator mode). The exact one-line command a user runs
 * (without sudo: the test is root, and sudo is not on a minimal host) must install the agent
 * from the served bundle under the fallback supervisor (no systemd here), bring it online with
 * its labels, capture real traffic made inside the host, upgrade in place keeping its identity,
 * upgrade again through `hdrcap agents upgrade` (the agent updates itself over NATS, and
 * refuses a tampered bundle, failing the rollout), and uninstall without a trace; bad tokens
 * and a tampered bundle must change nothing.
 */
import { createDb, migrateToLatest } from "@hdrcap/db";
import { createNatsAuthority, freePort, startNats, startPostgres, type NatsServer, type PostgresServer } from "@hdrcap/local-services";
import { createUser } from "@nats-io/nkeys";
import { execFile, execFileSync, spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadEnv } from "../../src/env.ts";
import { startServer, type RunningServer } from "../../src/server.ts";
import { bootstrapFirstTenant } from "../../src/services/tenants.ts";
import { FreshHost } from "./fresh-host.ts";

const ROOT = resolve(import.meta.dirname, "../../../..");
const BUILD_BUNDLE = join(ROOT, "scripts/build-agent-bundle.mjs");
const BUNDLE_DIR = process.env.HDRCAP_BUNDLE_DIR || join(ROOT, "dist/bundles");
const CLI = join(ROOT, "apps/control-plane/dist/cli.js");

const hdrcapPrograms = (): Set<number> =>
  new Set(
    (JSON.parse(execFileSync("bpftool", ["prog", "show", "--json"], { encoding: "utf8" })) as { id: number; name?: string }[])
      .filter((p) => p.name?.startsWith("hc_"))
      .map((p) => p.id),
  );

const sha256 = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

/** A bundle directory serving `version` repacked from the current bundle (what a newer build would serve). */
function repackBundle(from: string, to: string, newVersion: string): void {
  const latest = JSON.parse(readFileSync(join(from, "latest.json"), "utf8"));
  const work = mkdtempSync(join(to, "..", "repack-"));
  execFileSync("tar", ["-xzf", join(from, latest.file), "-C", work]);
  execFileSync("mv", [join(work, `hdrcap-agent-${latest.version}`), join(work, `hdrcap-agent-${newVersion}`)]);
  writeFileSync(join(work, `hdrcap-agent-${newVersion}`, "VERSION"), `${newVersion}\n`);
  mkdirSync(to, { recursive: true });
  const file = `agent-${newVersion}-linux-x64.tar.gz`;
  execFileSync("sh", ["-c", `tar -C "$1" -cf - "$2" | gzip -1 > "$3"`, "sh", work, `hdrcap-agent-${newVersion}`, join(to, file)]);
  rmSync(work, { recursive: true, force: true });
  writeFileSync(join(to, "latest.json"), JSON.stringify({ version: newVersion, file, sha256: sha256(join(to, file)), size: statSync(join(to, file)).size }));
}

describe.skipIf(process.getuid?.() !== 0)("fleet install onto a fresh Debian host (chroot)", () => {
  let dir: string;
  let pg: PostgresServer;
  let nats: NatsServer;
  let cp: RunningServer;
  let key: string;
  let host: FreshHost;
  let bundle: { version: string; file: string; sha256: string };
  let pristine: Set<string>;
  let programsBefore: Set<number>;
  let agentId: string;
  let installToken: string;
  let server: ChildProcess | undefined;
  const savedBundleDir = process.env.HDRCAP_BUNDLE_DIR;

  const api = async (method: string, path: string, body?: unknown) => {
    const request = () =>
      fetch(`${cp.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${key}`, ...(body ? { "content-type": "application/json" } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
    // A pooled keep-alive connection the server closed while idle (slow steps, such as repacking a bundle, come between calls) is retried once.
    const res = await request().catch((err: { cause?: { code?: string } }) => (err.cause?.code === "ECONNRESET" ? request() : Promise.reject(err)));
    return { status: res.status, body: (await res.json()) as any };
  };
  const newToken = async (maxUses = 1) => (await api("POST", "/v1/enrollment-tokens", { labels: { fleet: "install-test" }, maxUses })).body as { token: string; enrollmentToken: { id: string } };
  const oneLine = (args: string) => `curl -fsSL ${cp.url}/install.sh | sh -s -- ${args}`;
  const serveBundlesFrom = (d: string) => {
    process.env.HDRCAP_BUNDLE_DIR = d;
  };
  /** The built CLI, as a user runs it against this control plane; resolves with its exit code. */
  const hdrcap = (...args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolveRun) => {
      execFile(process.execPath, [CLI, ...args], { env: { ...process.env, HDRCAP_URL: cp.url, HDRCAP_API_KEY: key, XDG_CONFIG_HOME: "/nonexistent" }, timeout: 180_000 }, (err, stdout, stderr) =>
        resolveRun({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
  const agentProcess = () => host.processes().find((pid) => readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("agent/main.js"));

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "hdrcap-install-"));
    chmodSync(dir, 0o755);
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build first (npm run build)`);
    execFileSync(process.execPath, [BUILD_BUNDLE, "--out", BUNDLE_DIR, "--quiet"], { stdio: "inherit" });
    bundle = JSON.parse(readFileSync(join(BUNDLE_DIR, "latest.json"), "utf8"));
    serveBundlesFrom(BUNDLE_DIR);

    const authority = await createNatsAuthority();
    [pg, nats] = await Promise.all([
      startPostgres({ dir: join(dir, "pg"), ephemeral: true }),
      startNats({ dir: join(dir, "nats"), extraConfig: authority.serverConfig() }),
    ]);
    const admin = createDb(pg.url, { max: 2 });
    await migrateToLatest(admin.db);
    key = (await bootstrapFirstTenant(admin.db, { slug: "default", name: "Default" }))!.key;
    await admin.close();
    cp = await startServer(
      loadEnv({ DATABASE_URL: pg.url, NATS_URL: nats.url, NATS_ACCOUNT_SEED: authority.account.seed, PORT: "0", LOG_LEVEL: "silent" }),
      pino({ level: "silent" }),
    );
    host = FreshHost.create(join(dir, "host"));
    pristine = host.snapshot();
    programsBefore = hdrcapPrograms();
  }, 180_000);

  afterAll(async () => {
    server?.kill("SIGKILL");
    try {
      host?.destroy();
    } finally {
      process.env.HDRCAP_BUNDLE_DIR = savedBundleDir;
      if (savedBundleDir === undefined) delete process.env.HDRCAP_BUNDLE_DIR;
      await cp?.close();
      await Promise.allSettled([pg?.stop(), nats?.stop()]);
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it("serves install.sh with its own URL and a bundle whose checksum matches latest.json", async () => {
    const script = await (await fetch(`${cp.url}/install.sh`)).text();
    expect(script).toContain(`CONTROL_PLANE_URL='${cp.url}'`);
    expect(script).not.toMatch(/@[A-Z_]+@/);
    const latest = (await (await fetch(`${cp.url}/bundles/latest.json`)).json()) as typeof bundle;
    expect(latest).toMatchObject({ version: bundle.version, file: bundle.file, sha256: bundle.sha256 });
    const tarball = Buffer.from(await (await fetch(`${cp.url}/bundles/${latest.file}`)).arrayBuffer());
    expect(createHash("sha256").update(tarball).digest("hex")).toBe(latest.sha256);
    expect((await fetch(`${cp.url}/bundles/..%2Flatest.json`)).status).toBe(404);
  });

  it("refuses a used and an expired enrollment token with a clear message and changes nothing", async () => {
    const used = await newToken(1);
    const consumed = await fetch(`${cp.url}/v1/enroll`, {
      method: "POST",
      headers: { authorization: `Bearer ${used.token}`, "content-type": "application/json" },
      body: JSON.stringify({
        natsPublicKey: createUser().getPublicKey(),
        facts: { hostname: "elsewhere", machineId: "consumer-of-the-token", kernelRelease: "x", arch: "x64", btf: true, hooks: {}, agentVersion: "0" },
      }),
    });
    expect(consumed.status).toBe(200);
    await cp.db.db.deleteFrom("agents").where("machine_id", "=", "consumer-of-the-token").execute();
    const usedRun = await host.run(oneLine(`--token ${used.token} --labels env=test`));
    expect(usedRun.code, usedRun.stderr).toBe(5);
    expect(usedRun.stderr).toMatch(/used up/);
    expect(usedRun.stderr).toMatch(/nothing on this host was changed/);

    const expired = await newToken(5);
    await cp.db.db.updateTable("enrollment_tokens").set({ expires_at: new Date(Date.now() - 60_000) }).where("id", "=", expired.enrollmentToken.id).execute();
    const expiredRun = await host.run(oneLine(`--token ${expired.token}`));
    expect(expiredRun.code, expiredRun.stderr).toBe(5);
    expect(expiredRun.stderr).toMatch(/expired at/);

    expect(host.snapshot()).toEqual(pristine);
    expect((await api("GET", "/v1/agents")).body.items).toEqual([]);
  });

  it("refuses a tampered bundle (bad checksum) with a clear message, without using the token or changing anything", async () => {
    const tampered = join(dir, "tampered");
    mkdirSync(tampered);
    copyFileSync(join(BUNDLE_DIR, "latest.json"), join(tampered, "latest.json"));
    copyFileSync(join(BUNDLE_DIR, bundle.file), join(tampered, bundle.file));
    const bytes = readFileSync(join(tampered, bundle.file));
    const middle = Math.floor(bytes.length / 2);
    bytes[middle] = bytes[middle]! ^ 0xff;
    writeFileSync(join(tampered, bundle.file), bytes);
    const token = await newToken(1);
    serveBundlesFrom(tampered);
    try {
      const run = await host.run(oneLine(`--token ${token.token}`));
      expect(run.code, run.stderr).toBe(4);
      expect(run.stderr).toMatch(/checksum mismatch/);
      expect(run.stderr).toMatch(/tampered/);
    } finally {
      serveBundlesFrom(BUNDLE_DIR);
    }
    expect(host.snapshot()).toEqual(pristine);
    const row = await cp.db.db.selectFrom("enrollment_tokens").select("uses").where("id", "=", token.enrollmentToken.id).executeTakeFirstOrThrow();
    expect(row.uses).toBe(0);
  });

  it("installs with the one-line command; the agent comes online with its labels, the token on no disk", async () => {
    const token = await newToken(1);
    installToken = token.token;
    const started = Date.now();
    const run = await host.run(oneLine(`--token ${installToken} --labels env=test,team=edge`));
    if (process.env.HDRCAP_TEST_VERBOSE) console.log(run.stderr);
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(run.stderr).toMatch(/is running \(service: supervisor/);

    const identity = JSON.parse(readFileSync(host.path("var/lib/hdrcap/agent.json"), "utf8"));
    agentId = identity.agentId;
    await expect.poll(async () => (await api("GET", `/v1/agents/${agentId}`)).body.status, { timeout: 30_000, interval: 100 }).toBe("online");
    const installToOnlineMs = Date.now() - started;
    console.log(`fleet install: install.sh ${run.ms} ms, install-to-online ${installToOnlineMs} ms (bundle ${bundle.version})`);
    const agent = (await api("GET", `/v1/agents/${agentId}`)).body;
    expect(agent.labels).toEqual({ fleet: "install-test", env: "test", team: "edge" });

    expect(readlinkSync(host.path("opt/hdrcap-agent/current"))).toBe(bundle.version);
    expect(statSync(host.path("etc/hdrcap/agent.json")).mode & 0o777).toBe(0o600);
    expect(statSync(host.path("var/lib/hdrcap/agent.json")).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(host.path("etc/hdrcap/agent.json"), "utf8"))).toEqual({
      controlPlaneUrl: cp.url,
      stateDir: "/var/lib/hdrcap",
      labels: { env: "test", team: "edge" },
      caFile: null,
      installedVersion: bundle.version,
    });
    const supervisorPid = Number(readFileSync(host.path("run/hdrcap-agent.pid"), "utf8"));
    expect(host.processes()).toContain(supervisorPid);
    // No systemd here: the supervisor is started at boot by a SysV init script (Debian's update-rc.d links it).
    expect(run.stderr).toContain("started at boot by /etc/init.d/hdrcap-agent");
    expect(statSync(host.path("etc/init.d/hdrcap-agent")).mode & 0o777).toBe(0o755);
    expect(readlinkSync(host.path("etc/rc2.d/S01hdrcap-agent"))).toBe("../init.d/hdrcap-agent");
    expect(readlinkSync(host.path("etc/rc0.d/K01hdrcap-agent"))).toBe("../init.d/hdrcap-agent");
    expect(execFileSync("chroot", [host.root, "/etc/init.d/hdrcap-agent", "status"], { encoding: "utf8" })).toContain(`running (supervisor pid ${supervisorPid})`);
    // The token is in no file of the host (configuration, identity, logs, anything).
    const grep = execFileSync("sh", ["-c", `grep -rlF -- "$1" "$2"/etc "$2"/var "$2"/opt "$2"/run "$2"/root "$2"/tmp || true`, "sh", installToken, host.root], { encoding: "utf8" });
    expect(grep.trim()).toBe("");
    // …nor in the environment of anything left running (the supervisor and the agent).
    for (const pid of host.processes()) expect(readFileSync(`/proc/${pid}/environ`, "utf8"), `pid ${pid}`).not.toContain(installToken);
  }, 120_000);

  it("captures real headers from traffic inside the host", async () => {
    const port = await freePort();
    server = spawn(
      "chroot",
      [host.root, "/opt/hdrcap-agent/current/node/bin/node", "-e", `require("http").createServer((q, s) => { s.setHeader("X-Served-By", "fresh-host"); s.end("ok"); }).listen(${port}, "127.0.0.1")`],
      { stdio: "ignore" },
    );
    const created = await api("POST", "/v1/captures", { name: "fresh-host", agents: { ids: [agentId] }, filter: { ports: [port], role: "server" } });
    expect(created.status).toBe(201);
    const captureId: string = created.body.id;
    await expect.poll(async () => (await api("GET", `/v1/captures/${captureId}`)).body.agentStatuses?.[0]?.status, { timeout: 20_000, interval: 200 }).toBe("running");

    let records: any[] = [];
    await expect
      .poll(
        async () => {
          await host.run(`curl -s -o /dev/null -H 'X-Fleet-Install: yes' http://127.0.0.1:${port}/hello`);
          records = (await api("GET", `/v1/captures/${captureId}/records?limit=100`)).body.items;
          return records.some((r) => r.kind === "response") && records.some((r) => r.kind === "request");
        },
        { timeout: 20_000, interval: 500 },
      )
      .toBe(true);
    const request = records.find((r) => r.kind === "request");
    expect(request).toMatchObject({ method: "GET", path: "/hello", agentId });
    expect(request.headers).toContainEqual({ name: "X-Fleet-Install", value: "yes" });
    expect(request.headers.find((h: { name: string }) => h.name === "User-Agent")?.value).toMatch(/^curl\//);
    const response = records.find((r) => r.kind === "response");
    expect(response.headers).toContainEqual({ name: "X-Served-By", value: "fresh-host" });

    await api("POST", `/v1/captures/${captureId}/stop`);
    server.kill("SIGKILL");
    server = undefined;
  }, 60_000);

  it("re-running the line upgrades in place to the current bundle and keeps the agent's identity", async () => {
    const next = `${bundle.version}-next`;
    repackBundle(BUNDLE_DIR, join(dir, "next"), next);
    const identityBefore = readFileSync(host.path("var/lib/hdrcap/agent.json"));
    const seenBefore = (await api("GET", `/v1/agents/${agentId}`)).body.lastSeenAt;
    // A private CA to pin (the control plane here speaks plain HTTP; this checks the plumbing).
    execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=hdrcap test CA", "-keyout", join(dir, "ca.key"), "-out", host.path("root/ca.pem")], { stdio: "ignore" });
    serveBundlesFrom(join(dir, "next"));
    try {
      // The same line, with the same (now used-up) token: an enrolled host does not need it.
      const run = await host.run(oneLine(`--token ${installToken} --labels env=test,team=edge --ca /root/ca.pem`));
      expect(run.code, run.stderr).toBe(0);
      expect(run.stderr).toContain(`already enrolled as ${agentId}`);
      expect(run.stderr).toContain(`agent ${next} is running`);
    } finally {
      serveBundlesFrom(BUNDLE_DIR);
    }
    expect(readlinkSync(host.path("opt/hdrcap-agent/current"))).toBe(next);
    expect(existsSync(host.path(`opt/hdrcap-agent/${bundle.version}`))).toBe(true); // kept for a rollback
    expect(readFileSync(host.path("var/lib/hdrcap/agent.json")).equals(identityBefore)).toBe(true);
    expect(JSON.parse(readFileSync(host.path("etc/hdrcap/agent.json"), "utf8"))).toMatchObject({ caFile: "/etc/hdrcap/ca.pem", installedVersion: next, labels: { env: "test", team: "edge" } });
    expect(readFileSync(host.path("etc/hdrcap/ca.pem"), "utf8")).toBe(readFileSync(host.path("root/ca.pem"), "utf8"));
    const agentPid = host.processes().find((pid) => readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("agent/main.js"));
    expect(readFileSync(`/proc/${agentPid}/environ`, "utf8").split("\0")).toContain("NODE_EXTRA_CA_CERTS=/etc/hdrcap/ca.pem");
    rmSync(host.path("root/ca.pem")); // the user's own file, not the installer's
    await expect
      .poll(async () => {
        const a = (await api("GET", `/v1/agents/${agentId}`)).body;
        return a.status === "online" && a.lastSeenAt !== seenBefore;
      }, { timeout: 20_000, interval: 250 })
      .toBe(true);
    const agents = (await api("GET", "/v1/agents")).body.items;
    expect(agents.map((a: { id: string }) => a.id)).toEqual([agentId]);
  }, 120_000);

  it("hdrcap agents upgrade moves the running agent onto the new bundle over NATS, keeping its id and identity", async () => {
    const previous = readlinkSync(host.path("opt/hdrcap-agent/current"));
    const target = `${bundle.version}-rollout`;
    repackBundle(BUNDLE_DIR, join(dir, "rollout"), target);
    const identityBefore = readFileSync(host.path("var/lib/hdrcap/agent.json"));
    const supervisorPid = Number(readFileSync(host.path("run/hdrcap-agent.pid"), "utf8"));
    const agentPidBefore = agentProcess();
    expect((await api("GET", `/v1/agents/${agentId}`)).body.facts.agentVersion).toBe(previous);
    serveBundlesFrom(join(dir, "rollout"));
    try {
      const started = Date.now();
      const run = await hdrcap("agents", "upgrade", "--labels", "team=edge", "--batch-size", "1", "--timeout", "60", "--poll-interval", "250");
      const ms = Date.now() - started;
      expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
      expect(run.stdout).toContain(`upgrading 1 agent to ${target} in 1 batch of up to 1`);
      expect(run.stdout).toContain(`batch 1/1: ${agentId} (`);
      expect(run.stdout).toMatch(new RegExp(`${agentId} \\([^)]*\\): upgraded \\(runs ${target}\\)`));
      expect(run.stdout).toContain(`upgraded 1 agent to ${target}`);
      console.log(`agent upgrade: CLI start to agent back online on ${target}: ${ms} ms (1 batch of 1 agent)`);
    } finally {
      serveBundlesFrom(BUNDLE_DIR);
    }
    const agent = (await api("GET", `/v1/agents/${agentId}`)).body;
    expect(agent).toMatchObject({ id: agentId, status: "online", labels: { fleet: "install-test", env: "test", team: "edge" } });
    expect(agent.facts.agentVersion).toBe(target);
    expect((await api("GET", "/v1/agents")).body.items.map((a: { id: string }) => a.id)).toEqual([agentId]);
    // Switched atomically next to the previous version (kept for a rollback); the one before is pruned.
    expect(readlinkSync(host.path("opt/hdrcap-agent/current"))).toBe(target);
    expect(readdirSync(host.path("opt/hdrcap-agent")).sort()).toEqual([previous, target, "current", "hdrcap-agent-supervise"].sort());
    expect(readFileSync(host.path("var/lib/hdrcap/agent.json")).equals(identityBefore)).toBe(true);
    expect(JSON.parse(readFileSync(host.path("etc/hdrcap/agent.json"), "utf8"))).toMatchObject({ installedVersion: target, caFile: "/etc/hdrcap/ca.pem", labels: { env: "test", team: "edge" } });
    expect(statSync(host.path("etc/hdrcap/agent.json")).mode & 0o777).toBe(0o600);
    // The supervisor restarted the agent (a new process, from the new folder); it kept running itself.
    expect(Number(readFileSync(host.path("run/hdrcap-agent.pid"), "utf8"))).toBe(supervisorPid);
    const agentPid = agentProcess();
    expect(agentPid).toBeDefined();
    expect(agentPid).not.toBe(agentPidBefore);
    expect(readFileSync(`/proc/${agentPid}/cmdline`, "utf8")).toContain(`/opt/hdrcap-agent/${target}/agent/main.js`);
    const log = readFileSync(host.path("var/log/hdrcap-agent.log"), "utf8");
    expect(log).toMatch(/agent exited to restart onto .*-rollout; starting it now/);
    const actions = (await api("GET", "/v1/audit?limit=50")).body.items.map((e: { action: string }) => e.action);
    expect(actions).toEqual(expect.arrayContaining(["agent_upgrade.create", "agent_upgrade.completed"]));
  }, 120_000);

  it("a tampered bundle fails the rollout, naming the agent and the checksum, and the agent keeps running its version", async () => {
    const running = readlinkSync(host.path("opt/hdrcap-agent/current"));
    const target = `${bundle.version}-tampered`;
    const tampered = join(dir, "tampered-rollout");
    repackBundle(BUNDLE_DIR, tampered, target);
    const file = join(tampered, `agent-${target}-linux-x64.tar.gz`);
    const bytes = readFileSync(file);
    bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
    writeFileSync(file, bytes);
    const treeBefore = readdirSync(host.path("opt/hdrcap-agent")).sort();
    const agentPidBefore = agentProcess();
    serveBundlesFrom(tampered);
    let rollout: any;
    try {
      const run = await hdrcap("agents", "upgrade", "--ids", agentId, "--timeout", "30", "--json", "--poll-interval", "250");
      expect(run.code, run.stderr).toBe(1);
      rollout = JSON.parse(run.stdout);
      expect(run.stderr).toContain(`rollout ${rollout.id} failed: agent ${agentId}`);
    } finally {
      serveBundlesFrom(BUNDLE_DIR);
    }
    expect(rollout.status).toBe("failed");
    expect(rollout.statusReason).toMatch(
      new RegExp(`^agent ${agentId} \\([^)]*\\) failed in batch 1 of 1: checksum mismatch for agent-${target}-linux-x64\\.tar\\.gz: expected sha256 [0-9a-f]{64}, got [0-9a-f]{64}; .*still running ${running}`),
    );
    expect(rollout.agentStates).toEqual([expect.objectContaining({ agentId, status: "failed", batch: 0, fromVersion: running })]);
    expect((await api("GET", `/v1/agent-upgrades/${rollout.id}`)).body).toMatchObject({ id: rollout.id, status: "failed", counts: { failed: 1, upgraded: 0 } });
    // Nothing on the host changed, and the agent was not even restarted.
    expect(readlinkSync(host.path("opt/hdrcap-agent/current"))).toBe(running);
    expect(readdirSync(host.path("opt/hdrcap-agent")).sort()).toEqual(treeBefore);
    expect(JSON.parse(readFileSync(host.path("etc/hdrcap/agent.json"), "utf8")).installedVersion).toBe(running);
    expect(agentProcess()).toBe(agentPidBefore);
    const agent = (await api("GET", `/v1/agents/${agentId}`)).body;
    expect(agent.status).toBe("online");
    expect(agent.facts.agentVersion).toBe(running);
    expect(readFileSync(host.path("var/log/hdrcap-agent.log"), "utf8")).toContain("upgrade failed; this version keeps running");
  }, 120_000);

  it("--uninstall stops the agent, removes everything it installed and deregisters it", async () => {
    const loaded = [...hdrcapPrograms()].filter((id) => !programsBefore.has(id));
    const run = await host.run(oneLine("--uninstall"));
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain(`deregistered ${agentId}`);

    expect((await api("GET", `/v1/agents/${agentId}`)).status).toBe(404);
    expect((await api("GET", "/v1/agents")).body.items).toEqual([]);
    expect(host.processes()).toEqual([]);
    const stillLoaded = hdrcapPrograms();
    expect(loaded.filter((id) => stillLoaded.has(id))).toEqual([]);
    for (const p of ["opt/hdrcap-agent", "etc/hdrcap", "var/lib/hdrcap", "run/hdrcap-agent.pid", "var/log/hdrcap-agent.log"]) {
      expect(existsSync(host.path(p)) || (() => { try { return !!lstatSync(host.path(p)); } catch { return false; } })(), p).toBe(false);
    }
    // What remains changed is libbpf1/libelf1, which the install added as system libraries, and the package manager's own records.
    const libraryFiles = new Set(
      execFileSync("chroot", [host.root, "dpkg", "-L", "libbpf1", "libelf1"], { encoding: "utf8" })
        .split("\n")
        .filter(Boolean)
        .map((p) => p.replace(/^\//, "")),
    );
    const packageManager = /^(var\/lib\/dpkg|var\/lib\/apt|var\/cache\/apt|var\/cache\/debconf|var\/cache\/ldconfig|var\/log\/apt|var\/log\/dpkg\.log|etc\/ld\.so\.cache)/;
    const after = host.snapshot();
    const added = [...after].filter((p) => !pristine.has(p) && !packageManager.test(p) && !libraryFiles.has(p.replace(/[/@]$/, "")));
    const removed = [...pristine].filter((p) => !after.has(p) && !packageManager.test(p));
    expect({ added, removed }).toEqual({ added: [], removed: [] });
  }, 60_000);
});
