/**
 * The packet capture attaches through tcx links, which are file descriptors
 * of the process that made them: SIGKILL leaves no program attached to the
 * interface and no program loaded, so there is nothing stale to clean up
 * at the next start (no classic TC filter is ever installed).
 */
import { execFileSync, spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createPacketTestNet, type PacketTestNet, sleep } from "./fixtures/packet-netns.ts";

const here = path.dirname(fileURLToPath(import.meta.url));
let net: PacketTestNet;

beforeAll(() => {
  net = createPacketTestNet();
});
afterAll(() => net?.remove());

function progExists(id: number): boolean {
  try {
    execFileSync("bpftool", ["prog", "show", "id", String(id)], { stdio: "pipe" });
    return true;
  } catch {
    return false;
  }
}

/** Program ids of every BPF link in the system (bpftool of this age lists tcx links as type 11, without the device). */
function linkedProgramIds(): number[] {
  const links = JSON.parse(execFileSync("bpftool", ["link", "show", "-j"], { encoding: "utf8" })) as { prog_id?: number }[];
  return links.flatMap((l) => (l.prog_id ? [l.prog_id] : []));
}

function classicTcFilters(): string {
  return ["ingress", "egress"].map((hook) => net.exec(net.a, "tc", ["filter", "show", "dev", net.ifA, hook])).join("");
}

it("leaves nothing attached to the interface when the process that attached is killed with SIGKILL", async () => {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", path.join(here, "fixtures/packet-attach-and-wait.ts"), net.ifA, net.a],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on("exit", (_code, signal) => resolve(signal)));
  try {
    const line = await new Promise<string>((resolve, reject) => {
      let out = "";
      child.stdout.on("data", (d: Buffer) => {
        out += d.toString();
        if (out.includes("\n")) resolve(out.split("\n")[0] as string);
      });
      child.on("exit", () => reject(new Error(`child exited before attaching: ${out}`)));
    });
    const { progIds } = JSON.parse(line) as { progIds: number[] };
    expect(progIds).toHaveLength(2);
    for (const id of progIds) {
      expect(progExists(id)).toBe(true);
      expect(linkedProgramIds()).toContain(id);
    }
    expect(classicTcFilters()).toBe("");

    child.kill("SIGKILL");
    expect(await exited).toBe("SIGKILL");
    // Release after the last fd closes is deferred (RCU): poll briefly.
    const deadline = Date.now() + 5000;
    const stale = () => progIds.filter((id) => progExists(id) || linkedProgramIds().includes(id));
    while (stale().length > 0 && Date.now() < deadline) await sleep(50);
    expect(stale()).toEqual([]);
    expect(classicTcFilters()).toBe("");
  } finally {
    child.kill("SIGKILL");
  }
}, 30000);
