/**
 * A "fresh host" for install tests: the cached minimal Debian bookworm root filesystem
 * (make-rootfs.sh) under an overlay so each run starts clean and the cache stays untouched,
 * entered with chroot in this machine's network namespace (apt reaches Debian as the machine
 * does; the control plane is on loopback), with /proc, /sys, /sys/fs/bpf, /sys/kernel/tracing
 * and /dev mounted. `destroy()` kills what runs inside and unmounts everything, also after failures.
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";

export const ROOTFS_CACHE = process.env.HDRCAP_TEST_ROOTFS_CACHE ?? "/var/cache/hdrcap-test";
const MAKE_ROOTFS = resolve(import.meta.dirname, "make-rootfs.sh");
const PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

export class FreshHost {
  private mounts: string[] = [];
  private constructor(
    readonly dir: string,
    readonly root: string,
  ) {}

  /** Builds the cached rootfs when missing (~30 s, network), then an overlay of it under `dir`. */
  static create(dir: string): FreshHost {
    const lower = execFileSync("sh", [MAKE_ROOTFS, ROOTFS_CACHE], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim();
    const host = new FreshHost(dir, join(dir, "root"));
    for (const d of ["upper", "work", "root"]) mkdirSync(join(dir, d), { recursive: true });
    try {
      host.mount(["-t", "overlay", "overlay", "-o", `lowerdir=${lower},upperdir=${join(dir, "upper")},workdir=${join(dir, "work")}`, host.root], host.root);
      host.mount(["-t", "proc", "proc", join(host.root, "proc")], join(host.root, "proc"));
      host.mount(["--bind", "/sys", join(host.root, "sys")], join(host.root, "sys"));
      for (const sub of ["fs/bpf", "kernel/tracing"]) {
        if (existsSync(join("/sys", sub))) host.mount(["--bind", join("/sys", sub), join(host.root, "sys", sub)], join(host.root, "sys", sub));
      }
      host.mount(["--bind", "/dev", join(host.root, "dev")], join(host.root, "dev"));
      copyFileSync("/etc/resolv.conf", join(host.root, "etc/resolv.conf"));
    } catch (err) {
      host.destroy();
      throw err;
    }
    return host;
  }

  private mount(args: string[], target: string): void {
    execFileSync("mount", args, { stdio: "pipe" });
    this.mounts.push(target);
  }

  /** Runs `script` with sh inside the host as root with a clean environment, like a login shell would. */
  run(script: string, options: { timeoutMs?: number; env?: Record<string, string> } = {}): Promise<RunResult> {
    const started = Date.now();
    const envArgs = Object.entries({ PATH, HOME: "/root", LANG: "C.UTF-8", ...options.env }).map(([k, v]) => `${k}=${v}`);
    return new Promise((resolveRun, reject) => {
      const child = spawn("chroot", [this.root, "/usr/bin/env", "-i", ...envArgs, "sh", "-c", script], { stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 120_000);
      child.on("error", reject);
      // The supervisor inherits no pipes (install.sh redirects it), so "close" comes when sh ends.
      child.on("close", (code) => {
        clearTimeout(timer);
        resolveRun({ code: code ?? -1, stdout, stderr, ms: Date.now() - started });
      });
    });
  }

  /** Path of a file of the host, seen from outside. */
  path(p: string): string {
    return join(this.root, p);
  }

  /** Pids of every process whose root directory is this host (what a chroot leaves running). */
  processes(): number[] {
    const pids: number[] = [];
    for (const entry of readdirSync("/proc")) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        if (readlinkSync(`/proc/${entry}/root`) === this.root) pids.push(Number(entry));
      } catch {
        // gone, or not ours to read
      }
    }
    return pids;
  }

  /** Every path in the host's own filesystem (not /proc, /sys, /dev, /tmp), with its type, for before/after comparisons. */
  snapshot(): Set<string> {
    const out = new Set<string>();
    const skip = new Set(["proc", "sys", "dev", "tmp"]);
    const walk = (rel: string) => {
      for (const name of readdirSync(join(this.root, rel))) {
        const r = rel ? `${rel}/${name}` : name;
        if (!rel && skip.has(name)) continue;
        const st = lstatSync(join(this.root, r));
        out.add(`${r}${st.isDirectory() ? "/" : st.isSymbolicLink() ? "@" : ""}`);
        if (st.isDirectory()) walk(r);
      }
    };
    walk("");
    return out;
  }

  destroy(): void {
    for (const pid of this.processes()) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    for (const target of this.mounts.reverse()) {
      if (spawnSync("umount", [target], { stdio: "ignore" }).status !== 0) spawnSync("umount", ["-l", target], { stdio: "ignore" });
    }
    this.mounts = [];
    // Never recurse into a mount still attached below the host (it could be the real /dev or /sys).
    const stillMounted = readFileSync("/proc/self/mounts", "utf8")
      .split("\n")
      .map((l) => l.split(" ")[1] ?? "")
      .filter((m) => m === this.dir || m.startsWith(`${this.dir}/`));
    if (stillMounted.length > 0) throw new Error(`still mounted, not removing ${this.dir}: ${stillMounted.join(", ")}`);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
