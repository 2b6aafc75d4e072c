/**
 * A project-owned PostgreSQL server: initdb + postgres on a free loopback port with
 * its own data directory. Not the system cluster. Used by scripts/up.sh, the test
 * harness and the benchmarks.
 *
 * Postgres refuses to run as root, so as root the server runs as the `postgres`
 * system user (created by Debian's package). That user must be able to reach the
 * data directory; when the requested directory sits below a private one (a 0700
 * home or mktemp dir), the data lives under /var/lib/hdrcap/postgres/<hash> and the
 * requested path becomes a symlink to it.
 */
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, realpathSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import postgres from "postgres";
import { freePort, waitUntil } from "./ports.ts";
import { startProcess, type ManagedProcess } from "./process.ts";

export interface PostgresServer {
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  readonly process: ManagedProcess;
  /** URL of another database on the same server. */
  urlFor(database: string): string;
  stop(): Promise<void>;
}

export interface StartPostgresOptions {
  /** Directory for the cluster (created if missing; reused if it holds one). */
  dir: string;
  port?: number;
  /** Faster, non-durable settings for throwaway test clusters. */
  ephemeral?: boolean;
  logFile?: string;
}

const USER = "hdrcap";
const DATABASE = "hdrcap";

export function findPostgresBin(): string {
  const fromEnv = process.env.PG_BIN;
  if (fromEnv && existsSync(join(fromEnv, "postgres"))) return fromEnv;
  const base = "/usr/lib/postgresql";
  if (existsSync(base)) {
    const versions = readdirSync(base)
      .filter((v) => existsSync(join(base, v, "bin", "postgres")))
      .sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return join(base, versions[0], "bin");
  }
  try {
    return dirname(execFileSync("which", ["postgres"], { encoding: "utf8" }).trim());
  } catch {
    throw new Error("PostgreSQL server binaries not found: install the `postgresql` package or set PG_BIN");
  }
}

interface RunAs {
  uid: number;
  gid: number;
}

function serverUser(): RunAs | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim());
    const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim());
    return { uid, gid };
  } catch {
    throw new Error("running as root, but there is no `postgres` system user to run the server as (install the `postgresql` package)");
  }
}

/** Can `who` walk down to `path` (execute permission on every ancestor)? */
function canTraverse(path: string, who: RunAs): boolean {
  let p = resolve(path);
  const ancestors: string[] = [];
  while (p !== "/") {
    p = dirname(p);
    ancestors.push(p);
  }
  return ancestors.every((dir) => {
    const st = statSync(dir);
    if (st.uid === who.uid) return (st.mode & 0o100) !== 0;
    if (st.gid === who.gid) return (st.mode & 0o010) !== 0;
    return (st.mode & 0o001) !== 0;
  });
}

function resolveDataDir(dir: string, runAs: RunAs | undefined): string {
  const wanted = resolve(dir);
  if (existsSync(wanted) && lstatSync(wanted).isSymbolicLink()) return realpathSync(wanted);
  mkdirSync(dirname(wanted), { recursive: true });
  if (!runAs || canTraverse(wanted, runAs)) {
    mkdirSync(wanted, { recursive: true, mode: 0o700 });
    return wanted;
  }
  const hash = createHash("sha256").update(wanted).digest("hex").slice(0, 12);
  const parent = "/var/lib/hdrcap/postgres";
  mkdirSync(parent, { recursive: true, mode: 0o755 });
  chmodSync("/var/lib/hdrcap", 0o755);
  chmodSync(parent, 0o755);
  const real = join(parent, hash);
  mkdirSync(real, { recursive: true, mode: 0o700 });
  if (!existsSync(wanted)) symlinkSync(real, wanted);
  return real;
}

export async function startPostgres(opts: StartPostgresOptions): Promise<PostgresServer> {
  const bin = findPostgresBin();
  const runAs = serverUser();
  const dataDir = resolveDataDir(opts.dir, runAs);
  if (runAs) chownSync(dataDir, runAs.uid, runAs.gid);
  const passwordFile = join(dataDir, "hdrcap-password");

  const clusterDir = join(dataDir, "cluster");
  if (!existsSync(join(clusterDir, "PG_VERSION"))) {
    const password = randomBytes(18).toString("base64url");
    const pwfile = join(dataDir, ".initdb-pw");
    // initdb wants an empty directory; the password goes in after.
    writeFileSync(pwfile, password, { mode: 0o600 });
    if (runAs) chownSync(pwfile, runAs.uid, runAs.gid);
    try {
      execFileSync(join(bin, "initdb"), ["-D", clusterDir, "-U", USER, "--auth=scram-sha-256", `--pwfile=${pwfile}`, "-E", "UTF8", "--locale=C.UTF-8"], {
        stdio: "pipe",
        uid: runAs?.uid,
        gid: runAs?.gid,
      });
    } catch (err) {
      const e = err as { stderr?: Buffer };
      throw new Error(`initdb failed: ${e.stderr?.toString() ?? String(err)}`);
    }
    writeFileSync(passwordFile, password, { mode: 0o600 });
  }
  const password = readFileSync(passwordFile, "utf8").trim();
  const port = opts.port ?? (await freePort());
  const settings = [
    "listen_addresses=127.0.0.1",
    `port=${port}`,
    "unix_socket_directories=",
    "max_connections=200",
    "shared_buffers=256MB",
    "log_min_messages=warning",
    ...(opts.ephemeral ? ["fsync=off", "synchronous_commit=off", "full_page_writes=off"] : []),
  ];
  const logFile = opts.logFile ?? join(dirname(dataDir), `postgres-${port}.log`);
  const proc = startProcess("postgres", join(bin, "postgres"), ["-D", clusterDir, ...settings.flatMap((s) => ["-c", s])], {
    logFile,
    uid: runAs?.uid,
    gid: runAs?.gid,
  });
  const urlFor = (db: string) => `postgres://${USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${db}`;
  await waitUntil(
    "postgres",
    async () => {
      const sql = postgres(urlFor("postgres"), { max: 1, connect_timeout: 2, onnotice: () => {} });
      try {
        await sql`select 1`;
        return true;
      } finally {
        await sql.end({ timeout: 1 });
      }
    },
    { alive: () => proc.exitReason(), timeoutMs: 60_000 },
  );
  await ensureDatabase(urlFor("postgres"), DATABASE);
  return {
    url: urlFor(DATABASE),
    port,
    dataDir,
    process: proc,
    urlFor,
    // SIGINT is Postgres' "fast shutdown": roll back and exit cleanly.
    stop: () => proc.stop("SIGINT", 15_000),
  };
}

/** Create `name` on the server behind `adminUrl` unless it exists. */
export async function ensureDatabase(adminUrl: string, name: string): Promise<void> {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`invalid database name: ${name}`);
  const sql = postgres(adminUrl, { max: 1, onnotice: () => {} });
  try {
    const rows = await sql`select 1 from pg_database where datname = ${name}`;
    if (rows.length === 0) await sql.unsafe(`create database ${name}`);
  } finally {
    await sql.end({ timeout: 1 });
  }
}
