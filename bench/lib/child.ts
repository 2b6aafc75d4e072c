/** Spawning helpers: wait for a line on a stream, wait for exit, stop politely. */
import type { ChildProcess } from "node:child_process";
import type { Readable } from "node:stream";

/** Resolves with the accumulated text once `pattern` matches it; rejects on exit or timeout. */
export function waitForOutput(child: ChildProcess, stream: Readable, pattern: RegExp, timeoutMs = 15_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    const done = (err?: Error) => {
      clearTimeout(timer);
      stream.off("data", onData);
      child.off("exit", onExit);
      if (err) reject(err);
      else resolve(text);
    };
    const onData = (b: Buffer) => {
      text += b.toString();
      if (pattern.test(text)) done();
    };
    const onExit = (code: number | null) => done(new Error(`exited (${code}) before ${pattern}: ${text.trim()}`));
    const timer = setTimeout(() => done(new Error(`timed out waiting for ${pattern}: ${text.trim()}`)), timeoutMs);
    stream.on("data", onData);
    child.once("exit", onExit);
  });
}

export function waitForExit(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
}

/** Sends `signal`, and SIGKILL if the process is still there after `graceMs`. */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = "SIGTERM", graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = waitForExit(child);
  child.kill(signal);
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
