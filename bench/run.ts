/**
 * `npm run bench [-- <name>...] [--quick] [options]`: runs the named benchmarks
 * (all by default), each printing its side-by-side comparison.
 *
 *   npm run bench -- capture --quick        one short round per mode (smoke test, < 1 min)
 *   npm run bench -- capture --rounds 5 --duration 8 --modes off,hdrcap,tcpdump+tshark
 *   npm run bench -- capture --no-docs      do not rewrite docs/benchmarks.md
 */
import { runAgentMemoryBench } from "./agent-memory.ts";
import { runCaptureBench } from "./capture.ts";
import { runIngestBench } from "./ingest.ts";
import { runFleetBench } from "./fleet.ts";
import { runRecordsQueryBench } from "./records-query.ts";

const BENCHMARKS: Record<string, { describe: string; run: (argv: string[]) => Promise<void> }> = {
  capture: {
    describe: "HTTP header capture on a loaded nginx: off / cost floors / hdrcap / access_log / tcpdump+tshark",
    run: runCaptureBench,
  },
  "agent-memory": {
    describe: "RSS of the agent daemon (dist/main.js run) idle and under the capture bench's saturated (or --delay-ms: paced) nginx load",
    run: runAgentMemoryBench,
  },
  fleet: { describe: "time from POST /v1/captures to every one of N simulated agents running (--agents N, default 100)", run: runFleetBench },
  ingest: { describe: "agents → JetStream → ingester → Postgres: records/s and lag vs COPY into the same Postgres", run: runIngestBench },
  "records-query": { describe: "records API on a capture of N rows (--rows N, default 10M): first-page p50/p99 per filter, NDJSON export, key verification", run: runRecordsQueryBench },
};

async function main(argv: string[]): Promise<void> {
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log("usage: npm run bench -- [name...] [--quick] [--rounds N] [--duration S] [--modes a,b] [--no-docs|--write-docs]");
    for (const [name, b] of Object.entries(BENCHMARKS)) console.log(`  ${name.padEnd(10)} ${b.describe}`);
    return;
  }
  // Names are the leading arguments that are not options or option values.
  const names: string[] = [];
  for (const a of argv) {
    if (a.startsWith("-")) break;
    names.push(a);
  }
  const options = argv.slice(names.length);
  for (const n of names) if (!BENCHMARKS[n]) throw new Error(`unknown benchmark "${n}"; known: ${Object.keys(BENCHMARKS).join(", ")}`);
  for (const name of names.length ? names : Object.keys(BENCHMARKS)) {
    console.log(`== ${name}`);
    await BENCHMARKS[name]!.run(options);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  console.error(`bench: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
  process.exit(1);
});
