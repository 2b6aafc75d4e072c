/**
 * A child process owned by the service manager: its output goes to a log file,
 * its exit is observed, and stop() sends SIGTERM then SIGKILL after a grace period.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { openSync, closeSync, readFileSync } from "node:fs";

export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  /** null while running, otherwise a description of how it ended. */
  exitReason(): string | null;
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
}

export function startProcess(
  name: string,
  command: string,
  args: string[],
  opts: { logFile: string; env?: NodeJS.ProcessEnv; uid?: number; gid?: number; cwd?: string },
): ManagedProcess {
  const fd = openSync(opts.logFile, "a");
  let child: ChildProcess;
  try {
    child = spawn(command, args, {
      stdio: ["ignore", fd, fd],
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      uid: opts.uid,
      gid: opts.gid,
      // Own process group: a terminal's Ctrl-C reaches only the manager, which then
      // stops its children in order (agent before NATS before Postgres).
      detached: true,
    });
  } finally {
    closeSync(fd);
  }
  let exit: string | null = null;
  // Never outlive the manager: if it exits without stopping us, take the child down too.
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);
  child.once("exit", () => process.removeListener("exit", killOnExit));
  const exited = new Promise<void>((resolve) => {
    child.on("exit", (code, signal) => {
      exit = signal ? `killed by ${signal}` : `exit code ${code}`;
      resolve();
    });
    child.on("error", (err) => {
      exit = `failed to start: ${err.message}`;
      resolve();
    });
  });
  return {
    name,
    pid: child.pid ?? -1,
    logFile: opts.logFile,
    exitReason: () => (exit === null ? null : `${exit}; last log lines:\n${tail(opts.logFile)}`),
    async stop(signal = "SIGTERM", graceMs = 10_000) {
      if (exit !== null) return;
      child.kill(signal);
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}
