/**
 * The capture programs are owned by the process that attached them: links
 * and programs are file descriptors, so SIGKILL leaves nothing behind.
 */
import { execFileSync, spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";

const here = path.dirname(fileURLToPath(import.meta.url));

function progExists(id: number): boolean {
  try {
    execFileSync("bpftool", ["prog", "show", "id", String(id)], { stdio: "pipe" });
    return true;
  } catch {
    return false;
  }
}

it("unloads every program when the process that attached them is killed with SIGKILL", async () => {
  const child = spawn(process.execPath, ["--import", "tsx", path.join(here, "fixtures/load-and-wait.ts")], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on("exit", (_code, signal) => resolve(signal)));
  try {
    const line = await new Promise<string>((resolve, reject) => {
      let out = "";
      child.stdout.on("data", (d: Buffer) => {
        out += d.toString();
        if (out.includes("\n")) resolve(out.split("\n")[0] as string);
      });
      child.on("exit", () => reject(new Error(`child exited before loading: ${out}`)));
    });
    const { progIds } = JSON.parse(line) as { progIds: number[] };
    expect(progIds.length).toBe(3); // raw_syscalls sys_enter, sys_exit, sock inet_sock_set_state
    for (const id of progIds) {
      expect(id).toBeGreaterThan(0);
      expect(progExists(id)).toBe(true);
    }

    child.kill("SIGKILL");
    expect(await exited).toBe("SIGKILL");
    // Program release after the last fd closes is deferred (RCU): poll briefly.
    const deadline = Date.now() + 5000;
    let alive = progIds.filter(progExists);
    while (alive.length > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      alive = alive.filter(progExists);
    }
    expect(alive).toEqual([]);
  } finally {
    child.kill("SIGKILL");
  }
}, 30000);
