/**
 * The decoder's retained memory stays bounded under sustained keep-alive
 * traffic when the consumer keeps no records. Measured in a child process
 * started with --expose-gc so the heap can be collected before reading it.
 */
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const driver = fileURLToPath(new URL("./fixtures/decoder-heap-growth.ts", import.meta.url));
const MiB = 1024 * 1024;

function heapGrowth(exchanges: number, concurrent: number, requestsPerConnection: number) {
  const out = execFileSync(
    process.execPath,
    ["--expose-gc", "--import", "tsx", driver, String(exchanges), String(concurrent), String(requestsPerConnection)],
    { encoding: "utf8", timeout: 90_000 },
  );
  return JSON.parse(out.trim().split("\n").pop()!) as { records: number; connections: number; growthBytes: number };
}

describe("HttpDecoder memory", () => {
  it("retains less than 20 MiB after 200k request/response pairs over a few hundred short keep-alive connections", () => {
    // nginx ends a keep-alive connection after 1000 requests; 16 at a time, staggered.
    const result = heapGrowth(200_000, 16, 1000);
    expect(result.records).toBe(400_000);
    expect(result.connections).toBeGreaterThan(200);
    expect(result.growthBytes).toBeLessThan(20 * MiB);
  }, 120_000);
});
