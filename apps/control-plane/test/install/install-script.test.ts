/**
 * What GET /install.sh is made of: the systemd unit, the fallback supervisor and the
 * installer template, rendered the way the control plane serves them.
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { INSTALL_PATHS, LOG_ROTATION, publicUrl, renderInitScript, renderInstallScript, renderSupervisor, renderSystemdUnit } from "../../src/services/install-script.ts";

const scratch = mkdtempSync(join(tmpdir(), "hdrcap-install-script-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const hasSystemdAnalyze = spawnSync("systemd-analyze", ["--version"], { stdio: "ignore" }).status === 0;

describe("the systemd unit", () => {
  const unit = renderSystemdUnit();

  it("runs the installed agent as a service from its configuration file", () => {
    expect(unit).toContain("ExecStart=/opt/hdrcap-agent/current/bin/hdrcap-agent service --config /etc/hdrcap/agent.json\n");
    expect(unit).toMatch(/^Type=simple$/m);
  });

  it("restarts the agent on failure and logs to journald", () => {
    expect(unit).toMatch(/^Restart=on-failure$/m);
    expect(unit).toMatch(/^RestartSec=\d+s$/m);
    expect(unit).toMatch(/^StandardOutput=journal$/m);
    expect(unit).toMatch(/^StandardError=journal$/m);
    expect(unit).toMatch(/^KillSignal=SIGTERM$/m);
    expect(unit).toMatch(/^WantedBy=multi-user.target$/m);
  });

  it("carries no secret and no unfilled placeholder", () => {
    expect(unit).not.toMatch(/TOKEN|hcet_|@[A-Z_]+@/);
    expect(unit).not.toMatch(/^Environment/m);
  });

  it("follows the install paths it is given", () => {
    const custom = renderSystemdUnit({ ...INSTALL_PATHS, installRoot: "/srv/hdrcap", configFile: "/srv/etc/agent.json" });
    expect(custom).toContain("ExecStart=/srv/hdrcap/current/bin/hdrcap-agent service --config /srv/etc/agent.json\n");
  });

  it("refuses paths that are not plain absolute paths", () => {
    expect(() => renderSystemdUnit({ ...INSTALL_PATHS, installRoot: "/opt/x y" })).toThrow(/plain absolute path/);
    expect(() => renderSystemdUnit({ ...INSTALL_PATHS, configFile: "etc/agent.json" })).toThrow(/plain absolute path/);
  });

  it.skipIf(!hasSystemdAnalyze)("is a valid unit for systemd-analyze", () => {
    const path = join(scratch, "hdrcap-agent.service");
    writeFileSync(path, unit);
    const res = spawnSync("systemd-analyze", ["verify", "--man=no", path], { encoding: "utf8" });
    // verify also complains that ExecStart's binary is not installed on this machine; nothing else may be wrong.
    const problems = `${res.stdout}${res.stderr}`.split("\n").filter((l) => l.trim() && !/is not executable|No such file or directory|Command .* is not/.test(l));
    expect(problems).toEqual([]);
  });
});

describe("install.sh as served", () => {
  const script = renderInstallScript("https://hdrcap.example.com");

  it("is valid POSIX sh with every placeholder filled", () => {
    const path = join(scratch, "install.sh");
    writeFileSync(path, script);
    expect(spawnSync("sh", ["-n", path]).status).toBe(0);
    expect(script).not.toMatch(/@[A-Z_]+@/);
    expect(script).toContain("CONTROL_PLANE_URL='https://hdrcap.example.com'");
  });

  it("installs to the same paths the unit and the supervisor use", () => {
    expect(script).toMatch(new RegExp(`^INSTALL_ROOT=${INSTALL_PATHS.installRoot}$`, "m"));
    expect(script).toMatch(new RegExp(`^CONFIG_FILE=${INSTALL_PATHS.configFile}$`, "m"));
    expect(script).toMatch(new RegExp(`^PID_FILE=${INSTALL_PATHS.pidFile}$`, "m"));
    expect(script).toMatch(new RegExp(`^LOG_FILE=${INSTALL_PATHS.logFile}$`, "m"));
    expect(script).toContain(renderSystemdUnit().trimEnd());
    expect(script).toContain(renderSupervisor().trimEnd());
  });

  it("rejects unknown options and malformed labels before checking anything else", () => {
    const path = join(scratch, "install.sh");
    writeFileSync(path, script);
    const unknown = spawnSync("sh", [path, "--frobnicate"], { encoding: "utf8" });
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/unknown option '--frobnicate'/);
    const missing = spawnSync("sh", [path, "--token"], { encoding: "utf8" });
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/--token needs a value/);
  });

  it("prints its usage with the control plane's URL", () => {
    const res = spawnSync("sh", ["-s", "--", "--help"], { input: script, encoding: "utf8" });
    expect(res.status).toBe(0);
    expect(res.stdout).toContain("curl -fsSL https://hdrcap.example.com/install.sh | sudo sh -s -- --token <token>");
  });
});

describe("publicUrl", () => {
  it("is the request's origin by default", () => {
    expect(publicUrl("http://10.1.2.3:7070/install.sh?x=1", {})).toBe("http://10.1.2.3:7070");
  });

  it("is HDRCAP_PUBLIC_URL when set, without a trailing slash", () => {
    expect(publicUrl("http://127.0.0.1:7070/install.sh", { HDRCAP_PUBLIC_URL: "https://hdrcap.example.com/prefix/" })).toBe("https://hdrcap.example.com/prefix");
  });

  it("refuses anything that could break out of the script's quotes", () => {
    expect(() => publicUrl("http://x/install.sh", { HDRCAP_PUBLIC_URL: "https://evil.example.com/'$(reboot)'" })).toThrow();
    expect(() => publicUrl("http://x/install.sh", { HDRCAP_PUBLIC_URL: "ftp://hdrcap.example.com" })).toThrow(/http/);
  });
});

describe("the fallback supervisor", () => {
  it("restarts the agent whenever it exits and stops it on SIGTERM", async () => {
    const root = join(scratch, "supervised");
    const paths = { ...INSTALL_PATHS, installRoot: join(root, "opt"), configFile: join(root, "agent.json"), pidFile: join(root, "agent.pid") };
    mkdirSync(join(root, "opt/current/bin"), { recursive: true });
    const starts = join(root, "starts");
    // A fake agent: the first run fails at once, later runs wait for SIGTERM.
    writeFileSync(
      join(root, "opt/current/bin/hdrcap-agent"),
      `#!/bin/sh\necho "$*" >> ${starts}\n[ "$(wc -l < ${starts})" -ge 2 ] || exit 3\ntrap 'echo stopped >> ${starts}; exit 0' TERM\nwhile :; do sleep 0.1; done\n`,
    );
    chmodSync(join(root, "opt/current/bin/hdrcap-agent"), 0o755);
    writeFileSync(join(root, "supervise"), renderSupervisor(paths));
    const log: string[] = [];
    const sup = spawn("sh", [join(root, "supervise")], { stdio: ["ignore", "pipe", "pipe"] });
    sup.stdout.on("data", (d: Buffer) => log.push(d.toString()));
    const exited = new Promise<number | null>((r) => sup.on("exit", (code) => r(code)));
    const waitFor = async (cond: () => boolean) => {
      for (let i = 0; i < 100 && !cond(); i++) await new Promise((r) => setTimeout(r, 50));
      expect(cond()).toBe(true);
    };
    await waitFor(() => existsSync(starts) && readFileSync(starts, "utf8").split("\n").filter(Boolean).length === 2);
    expect(readFileSync(paths.pidFile, "utf8").trim()).toBe(String(sup.pid));
    expect(readFileSync(starts, "utf8")).toContain(`service --config ${paths.configFile}`);
    expect(log.join("")).toMatch(/agent exited with status 3; restarting in 1s/);
    sup.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(readFileSync(starts, "utf8")).toMatch(/stopped\n$/);
    expect(existsSync(paths.pidFile)).toBe(false);
    expect(execFileSync("sh", ["-c", `ps -eo args | grep -c '[o]pt/current/bin/hdrcap-agent' || true`], { encoding: "utf8" }).trim()).toBe("0");
  }, 20_000);
});

describe("the fallback supervisor's log and restarts", () => {
  it("restarts at once an agent that exits 75 (upgrade installed) and rotates the log by size, keeping a few files", async () => {
    const root = join(scratch, "rotating");
    const paths = { ...INSTALL_PATHS, installRoot: join(root, "opt"), configFile: join(root, "agent.json"), pidFile: join(root, "agent.pid"), logFile: join(root, "agent.log") };
    mkdirSync(join(root, "opt/current/bin"), { recursive: true });
    const starts = join(root, "starts");
    // A fake agent: its first five runs write ~3 kB to the log and exit 75; the sixth waits for SIGTERM.
    writeFileSync(
      join(root, "opt/current/bin/hdrcap-agent"),
      `#!/bin/sh
echo run >> ${starts}
i=0; while [ $i -lt 60 ]; do echo "agent line $i of a run that fills the log quickly......"; i=$((i+1)); done
[ "$(wc -l < ${starts})" -ge 6 ] || exit 75
trap 'exit 0' TERM
while :; do sleep 0.1; done
`,
    );
    chmodSync(join(root, "opt/current/bin/hdrcap-agent"), 0o755);
    writeFileSync(join(root, "supervise"), renderSupervisor(paths));
    const out = openSync(paths.logFile, "a", 0o600);
    const started = Date.now();
    const sup = spawn("sh", [join(root, "supervise")], { stdio: ["ignore", out, out], env: { ...process.env, HDRCAP_LOG_MAX_BYTES: "2000" } });
    closeSync(out);
    const exited = new Promise<number | null>((r) => sup.on("exit", (code) => r(code)));
    try {
      for (let i = 0; i < 200 && !(existsSync(starts) && readFileSync(starts, "utf8").split("\n").filter(Boolean).length === 6); i++) await new Promise((r) => setTimeout(r, 50));
      // Five restarts without back-off: within the supervisor's 1 s poll each (a plain failure waits 1, 2, 4, 8, 16 s).
      expect(Date.now() - started).toBeLessThan(9000);
    } finally {
      sup.kill("SIGTERM");
    }
    expect(await exited).toBe(0);
    const files = readdirSync(root).filter((f) => f.startsWith("agent.log")).sort();
    expect(files).toEqual(["agent.log", "agent.log.1", "agent.log.2", "agent.log.3"]);
    for (const f of files.slice(1)) {
      expect(statSync(join(root, f)).size).toBeGreaterThan(2000);
      expect(statSync(join(root, f)).mode & 0o777).toBe(0o600);
    }
    const all = files.map((f) => readFileSync(join(root, f), "utf8")).join("");
    expect(all).toMatch(/agent exited to restart onto .*; starting it now/);
    expect(all).toMatch(/rotated the log \(\d+ bytes\) to .*agent\.log\.1/);
    expect(all).not.toMatch(/restarting in/);
  }, 20_000);

  it("--daemon starts one detached supervisor and refuses a second while it runs", async () => {
    const root = join(scratch, "daemon");
    const paths = { ...INSTALL_PATHS, installRoot: join(root, "opt"), configFile: join(root, "agent.json"), pidFile: join(root, "agent.pid"), logFile: join(root, "agent.log") };
    mkdirSync(join(root, "opt/current/bin"), { recursive: true });
    writeFileSync(join(root, "opt/current/bin/hdrcap-agent"), `#!/bin/sh
echo agent up
trap 'exit 0' TERM
while :; do sleep 0.1; done
`);
    chmodSync(join(root, "opt/current/bin/hdrcap-agent"), 0o755);
    const supervise = join(root, "opt/hdrcap-agent-supervise");
    writeFileSync(supervise, renderSupervisor(paths));
    chmodSync(supervise, 0o755);
    expect(spawnSync(supervise, ["--daemon"]).status).toBe(0);
    for (let i = 0; i < 100 && !(existsSync(paths.logFile) && readFileSync(paths.logFile, "utf8").includes("agent up")); i++) await new Promise((r) => setTimeout(r, 50));
    const pid = Number(readFileSync(paths.pidFile, "utf8"));
    try {
      expect(statSync(paths.logFile).mode & 0o777).toBe(0o600);
      const again = spawnSync(supervise, ["--daemon"], { encoding: "utf8" });
      expect(again.status).toBe(0);
      expect(again.stderr).toContain(`already running (pid ${pid})`);
    } finally {
      process.kill(pid, "SIGTERM");
    }
    const gone = () => spawnSync("kill", ["-0", String(pid)]).status !== 0;
    for (let i = 0; i < 100 && !gone(); i++) await new Promise((r) => setTimeout(r, 50));
    expect(gone()).toBe(true);
    expect(existsSync(paths.pidFile)).toBe(false);
    expect(readFileSync(paths.logFile, "utf8")).toMatch(/hdrcap-agent-supervise: stopped\n$/);
  }, 20_000);

  it("keeps ${LOG_ROTATION.keep} rotated files of at most about ${LOG_ROTATION.maxBytes} bytes by default", () => {
    const text = renderSupervisor();
    expect(text).toContain(`LOG_MAX_BYTES=\${HDRCAP_LOG_MAX_BYTES:-${LOG_ROTATION.maxBytes}}`);
    expect(text).toContain(`LOG_KEEP=${LOG_ROTATION.keep}`);
    expect(text).toContain("LOG_FILE=/var/log/hdrcap-agent.log");
  });
});

describe("the SysV boot script", () => {
  const init = renderInitScript();

  it("starts the supervisor detached at boot and is valid sh with LSB headers", () => {
    const path = join(scratch, "hdrcap-agent.init");
    writeFileSync(path, init);
    expect(spawnSync("sh", ["-n", path]).status).toBe(0);
    expect(init).toContain("SUPERVISOR=/opt/hdrcap-agent/hdrcap-agent-supervise");
    expect(init).toMatch(/start\) exec "\$SUPERVISOR" --daemon/);
    expect(init).toMatch(/^# Default-Start: +2 3 4 5$/m);
    expect(init).not.toMatch(/@[A-Z_]+@/);
  });

  it("is inside install.sh as served", () => {
    expect(renderInstallScript("https://hdrcap.example.com")).toContain(init.trimEnd());
  });
});
