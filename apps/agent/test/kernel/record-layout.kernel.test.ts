/**
 * The committed TypeScript record layout must match the BTF of the freshly
 * compiled BPF object (bpf/include/hdrcap.h is the source of truth).
 */
import { spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";

const bpfDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../../bpf");

it("the committed record-layout.generated.ts matches the compiled BPF object", () => {
  const r = spawnSync("make", ["-s", "check-layout"], { cwd: bpfDir, encoding: "utf8" });
  expect(r.stderr + r.stdout).toContain("record layout is up to date");
  expect(r.status).toBe(0);
}, 120000);
