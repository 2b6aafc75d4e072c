/**
 * Self-update of an installed agent (the `upgrade` command): download the bundle the
 * control plane names, verify its SHA-256 before anything on the host changes, unpack it
 * next to the running version, switch `<install root>/current` to it with one rename, record
 * the version in the configuration, and prune versions older than the one being replaced
 * (kept for a rollback, as install.sh does). The caller restarts the service afterwards.
 * A failure at any step leaves the running version and the `current` link untouched.
 *
 * Layout (install.sh): <root>/<version>/{VERSION,bin/hdrcap-agent,node/bin/node,agent/main.js},
 * <root>/current -> <version>. The launcher resolves symlinks, so the running main.js path
 * is the physical <root>/<version>/agent/main.js.
 */
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createWriteStream, existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import type { AgentUpgradeCommand } from "@hdrcap/api/nats";

const run = promisify(execFile);
const VERSION_RE = /^[A-Za-z0-9._-]{1,64}$/;

export class SelfUpdateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SelfUpdateError";
  }
}

export interface InstalledBundle {
  /** e.g. /opt/hdrcap-agent */
  installRoot: string;
  /** e.g. /opt/hdrcap-agent/0.1.0-abc */
  bundleDir: string;
  version: string;
}

/** The installed bundle this process runs from, or null (a development checkout, `npm run`, tests). */
export function installedBundle(mainScript: string | undefined = process.argv[1]): InstalledBundle | null {
  if (!mainScript) return null;
  const bundleDir = dirname(dirname(mainScript));
  let version: string;
  try {
    version = readFileSync(join(bundleDir, "VERSION"), "utf8").trim();
  } catch {
    return null;
  }
  if (!VERSION_RE.test(version)) return null;
  return { installRoot: dirname(bundleDir), bundleDir, version };
}

export interface SelfUpdateOptions {
  controlPlaneUrl: string;
  /** The configuration file whose installedVersion is updated (install.sh writes it). */
  configPath: string;
  bundle: InstalledBundle;
  fetch?: typeof fetch;
  /** Whole download; default 10 min. */
  downloadTimeoutMs?: number;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

export interface SelfUpdateResult {
  fromVersion: string;
  toVersion: string;
  /** Versions removed from the install root (older than the one replaced). */
  pruned: string[];
}

/** Downloads, verifies, unpacks and switches to `command`'s bundle. Throws SelfUpdateError; changes nothing then. */
export async function selfUpdate(command: AgentUpgradeCommand, options: SelfUpdateOptions): Promise<SelfUpdateResult> {
  const { bundle } = options;
  const root = bundle.installRoot;
  const log = options.log ?? (() => {});
  const currentLink = join(root, "current");
  if (!isSymlink(currentLink)) throw new SelfUpdateError(`${currentLink} is not a link: this agent was not installed by install.sh; upgrade it by running the install line`);
  if (command.version === bundle.version) throw new SelfUpdateError(`already running ${command.version}`);

  const scratch = join(root, `.upgrade-${randomBytes(6).toString("hex")}`);
  mkdirSync(scratch, { mode: 0o700 });
  try {
    // 1. Download and verify; nothing outside the scratch folder has changed yet.
    const tarball = join(scratch, command.file);
    const url = new URL(`bundles/${command.file}`, options.controlPlaneUrl.endsWith("/") ? options.controlPlaneUrl : `${options.controlPlaneUrl}/`);
    log("downloading bundle", { url: url.href, version: command.version });
    const actual = await download(url, tarball, command.size, options.fetch ?? fetch, options.downloadTimeoutMs ?? 600_000);
    if (actual !== command.sha256) {
      throw new SelfUpdateError(
        `checksum mismatch for ${command.file}: expected sha256 ${command.sha256}, got ${actual}; the bundle was corrupted or tampered with, refusing it (still running ${bundle.version})`,
      );
    }

    // 2. Unpack and check what it holds.
    const unpacked = join(scratch, "x");
    mkdirSync(unpacked);
    try {
      await run("tar", ["-xzf", tarball, "-C", unpacked], { timeout: 300_000 });
    } catch (err) {
      throw new SelfUpdateError(`cannot unpack ${command.file}: ${(err as { stderr?: string }).stderr?.trim() || (err as Error).message}`);
    }
    const stage = join(unpacked, `hdrcap-agent-${command.version}`);
    let stagedVersion = "";
    try {
      stagedVersion = readFileSync(join(stage, "VERSION"), "utf8").trim();
    } catch {
      // reported below
    }
    if (stagedVersion !== command.version || !isExecutable(join(stage, "bin/hdrcap-agent"))) {
      throw new SelfUpdateError(`${command.file} does not hold agent ${command.version}`);
    }
    try {
      await run(join(stage, "node/bin/node"), ["-e", "process.exit(0)"], { timeout: 30_000 });
    } catch {
      throw new SelfUpdateError(`the Node.js runtime of ${command.version} does not run on this host`);
    }

    // 3. Move next to the running version and switch `current` with one atomic rename.
    const target = join(root, command.version);
    rmSync(target, { recursive: true, force: true });
    renameSync(stage, target);
    const tmpLink = join(root, `.current-${randomBytes(6).toString("hex")}`);
    symlinkSync(command.version, tmpLink);
    renameSync(tmpLink, currentLink);
    log("switched current", { from: bundle.version, to: command.version });
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }

  // 4. After the switch: bookkeeping whose failure must not undo the upgrade.
  try {
    recordInstalledVersion(options.configPath, command.version);
  } catch (err) {
    log("could not record the installed version in the configuration", { err: (err as Error).message });
  }
  const pruned = pruneVersions(root, [command.version, bundle.version]);
  return { fromVersion: bundle.version, toVersion: command.version, pruned };
}

async function download(url: URL, path: string, expectedSize: number, fetcher: typeof fetch, timeoutMs: number): Promise<string> {
  let res: Response;
  try {
    res = await fetcher(url, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    const cause = (err as { cause?: { message?: string } }).cause?.message;
    throw new SelfUpdateError(`cannot download ${url.href}: ${cause ?? (err as Error).message}`);
  }
  if (!res.ok || !res.body) throw new SelfUpdateError(`cannot download ${url.href}: HTTP ${res.status}`);
  const hash = createHash("sha256");
  let bytes = 0;
  // A bundle larger than announced is not the one named: stop reading (guards the disk, too).
  const limit = expectedSize;
  try {
    await pipeline(
      Readable.fromWeb(res.body as never),
      async function* (source: AsyncIterable<Buffer>) {
        for await (const chunk of source) {
          bytes += chunk.length;
          if (bytes > limit) throw new SelfUpdateError(`${url.href} is larger than the ${expectedSize} bytes announced; refusing it`);
          hash.update(chunk);
          yield chunk;
        }
      },
      createWriteStream(path, { mode: 0o600 }),
    );
  } catch (err) {
    if (err instanceof SelfUpdateError) throw err;
    throw new SelfUpdateError(`download of ${url.href} failed: ${(err as Error).message}`);
  }
  return hash.digest("hex");
}

/** Rewrites installedVersion in the configuration (atomically, keeping mode 0600). */
export function recordInstalledVersion(configPath: string, version: string): void {
  const config = JSON.parse(readFileSync(configPath, "utf8")) as Record<string, unknown>;
  config.installedVersion = version;
  const tmp = `${configPath}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(config, null, 2) + "\n", { mode: 0o600 });
  renameSync(tmp, configPath);
}

/** Removes version folders other than `keep` (and anything `current` points at); returns their names. */
export function pruneVersions(root: string, keep: string[]): string[] {
  const current = isSymlink(join(root, "current")) ? readlinkSync(join(root, "current")) : null;
  const removed: string[] = [];
  for (const name of readdirSync(root)) {
    if (name.startsWith(".") || keep.includes(name) || name === current) continue;
    const p = join(root, name);
    const st = lstatSync(p);
    // Version folders hold a VERSION file; the supervisor script and links are not touched.
    if (!st.isDirectory() || !existsSync(join(p, "VERSION"))) continue;
    rmSync(p, { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}

export type RestartMethod = { kind: "systemd"; unit: string } | { kind: "exit"; code: number };

/** The exit code the fallback supervisor (and systemd's Restart=on-failure) treats as "start me again now". */
export const RESTART_EXIT_CODE = 75;

/**
 * How this process gets restarted onto the new version: through systemd when it runs as a
 * systemd unit (its cgroup names the unit), else by exiting with RESTART_EXIT_CODE, which
 * the supervisor restarts at once (systemd's Restart=on-failure would too).
 */
export function restartMethod(cgroup = readCgroup(), env: NodeJS.ProcessEnv = process.env): RestartMethod {
  const unit = /\/([A-Za-z0-9@._-]+\.service)\s*$/m.exec(cgroup)?.[1];
  if (env.INVOCATION_ID && unit && existsSync("/run/systemd/system")) return { kind: "systemd", unit };
  return { kind: "exit", code: RESTART_EXIT_CODE };
}

function readCgroup(): string {
  try {
    return readFileSync("/proc/self/cgroup", "utf8");
  } catch {
    return "";
  }
}

function isSymlink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

function isExecutable(p: string): boolean {
  try {
    return (statSync(p).mode & 0o111) !== 0;
  } catch {
    return false;
  }
}
