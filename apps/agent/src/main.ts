#!/usr/bin/env node
/**
 * `hdrcap-agent`: the host agent. `run` enrolls (once) and serves the control
 * plane over NATS; `capture` runs a standalone capture on this host and prints
 * records (the basis of the kernel tests); `check` reports what this host can do.
 */
import { Command, Option } from "commander";
import type { HttpRecord } from "@hdrcap/api/records";
import type { HttpCapture, HttpCaptureCounters } from "./capture/http-capture.ts";
import type { RecordOutputCounters } from "./cli/record-output.ts";
import { DEFAULT_SERVICE_CONFIG_PATH } from "./install/service-config.ts";
// Each command imports what it runs when it runs: the build splits these into chunks (build-app.mjs --split),
// so the daemon never evaluates the capture CLI's output code, nor the CLI the daemon's NATS, pino and prom-client.

const program = new Command("hdrcap-agent").description("hdrcap host agent").showHelpAfterError();

const intList = (name: string) => (value: string, prev: number[] = []) => {
  const out = [...prev];
  for (const part of value.split(",")) {
    const n = Number(part.trim());
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${name}: "${part}" is not a non-negative integer`);
    out.push(n);
  }
  return out;
};
const strList = (value: string, prev: string[] = []) => [...prev, ...value.split(",").map((s) => s.trim()).filter(Boolean)];

program
  .command("check")
  .description("report privileges, BTF and available hooks (mounts tracefs/bpffs when missing)")
  .option("--json", "print JSON")
  .action(async (opts: { json?: boolean }) => {
    const { runSystemCheck } = await import("./capture/system-check.ts");
    const report = runSystemCheck();
    console.log(opts.json ? JSON.stringify(report, null, 2) : report);
  });

program
  .command("capture")
  .description("capture HTTP/1.x header blocks on this host and print one record per message until Ctrl-C")
  .option("--http", "capture HTTP/1.x (the default and, for now, only protocol)", true)
  .addOption(new Option("--source <source>", "socket: syscalls of every process (default); packet: TC on --interface").choices(["socket", "packet"]).default("socket"))
  .option("--interface <ifname>", "interface for --source packet")
  .addOption(
    new Option("--direction <direction>", "--source packet: hooks to attach (on lo every packet passes both: ingress alone sees each once)")
      .choices(["ingress", "egress", "both"])
      .default("both"),
  )
  .option("--port <ports>", "local or remote port (repeatable, comma-separated)", intList("port"))
  .option("--pid <pids>", "process ids (repeatable, comma-separated)", intList("pid"))
  .option("--comm <prefix>", "process name prefix")
  .addOption(new Option("--role <role>", "client, server or any").choices(["client", "server", "any"]).default("any"))
  .option("--capture-bytes <n>", "bytes copied per syscall (1..65536)", (v) => Number(v), 4096)
  .addOption(
    new Option("--ring-buffer-mib <n>", "kernel ring buffer size in MiB (socket source); printing JSON roughly doubles the CPU per record, hence twice the daemon's room")
      .argParser((v) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 1 || n > 1024) throw new Error(`--ring-buffer-mib: "${v}" is not an integer from 1 to 1024`);
        return n;
      })
      .default(8),
  )
  .option("--include <names>", "only keep these headers (repeatable, comma-separated)", strList)
  .option("--redact <names>", "also redact these headers", strList)
  .addOption(new Option("--redact-mode <mode>", "how to redact").choices(["mask", "drop", "hash"]).default("mask"))
  .option("--allow-sensitive", "keep Authorization, Cookie, … in clear (explicit opt-in)")
  .option("--max-records <n>", "stop after this many records", (v) => Number(v))
  .option("--duration <seconds>", "stop after this long", (v) => Number(v))
  .addOption(new Option("--format <format>", "output format").choices(["ndjson", "text"]).default("ndjson"))
  .option("--progress", "live status line on stderr (default when stderr is a terminal)")
  .option("--no-progress", "no live status line")
  .action(
    async (opts: {
      progress?: boolean;
      source: "socket" | "packet";
      interface?: string;
      direction: "ingress" | "egress" | "both";
      port?: number[];
      pid?: number[];
      comm?: string;
      role: "client" | "server" | "any";
      captureBytes: number;
      ringBufferMib: number;
      include?: string[];
      redact?: string[];
      redactMode: "mask" | "drop" | "hash";
      allowSensitive?: boolean;
      maxRecords?: number;
      duration?: number;
      format: "ndjson" | "text";
    }) => {
      const [{ HttpCapture: Capture }, { RecordOutput }, { formatRecordText }, { RecordJsonEncoder }, { CaptureProgress }] = await Promise.all([
        import("./capture/http-capture.ts"),
        import("./cli/record-output.ts"),
        import("./cli/format-record.ts"),
        import("./capture/record-json.ts"),
        import("./cli/capture-progress.ts"),
      ]);
      const json = new RecordJsonEncoder();
      // Bounded stdout: a slow reader costs dropped (counted) records, never memory or the capture itself.
      const output = new RecordOutput<HttpRecord>({
        fd: 1,
        format: opts.format === "ndjson" ? (r) => json.encode(r) : formatRecordText,
        newline: opts.format === "ndjson",
        onClosed: (err) => finish(err.code === "EPIPE" ? "stdout closed" : `stdout: ${err.message}`),
      });
      let capture: HttpCapture | undefined;
      let finishing = false;
      const progress = (opts.progress ?? process.stderr.isTTY === true)
        ? new CaptureProgress(process.stderr, () => ({ capture: capture!.counters(), output: output.counters() }))
        : null;
      const finish = (reason: string) => {
        if (!capture || finishing) return;
        finishing = true;
        progress?.stop();
        capture.stop(); // the last records go to the output here
        void output.flush(OUTPUT_FLUSH_TIMEOUT_MS).then(() => {
          printSummary(capture!.counters(), reason, output.counters());
          process.exit(0);
        });
      };
      if (opts.source === "packet" && !opts.interface) throw new Error("--source packet needs --interface <ifname>");
      capture = Capture.start({
        source: opts.source === "packet" ? { kind: "packet", ifname: opts.interface!, direction: opts.direction } : { kind: "socket" },
        filter: {
          ports: opts.port,
          tgids: opts.pid,
          comm: opts.comm,
          role: opts.role,
          captureBytes: opts.captureBytes,
        },
        policy: {
          include: opts.include,
          redact: opts.redact,
          redactMode: opts.redactMode,
          allowSensitive: opts.allowSensitive ?? false,
        },
        maxRecords: opts.maxRecords,
        durationSeconds: opts.duration,
        ringBufferBytes: opts.ringBufferMib * 1024 * 1024,
        onRecords: (records) => output.write(records),
        onStop: (reason) => finish(reason),
      });
      // The capture's own timers do not hold the process open; this one does, until finish().
      setInterval(() => {}, 1 << 30);
      process.stderr.write(`hdrcap-agent: capturing HTTP (${describeFilter(opts)}); Ctrl-C to stop\n`);
      progress?.start();
      process.once("SIGINT", () => finish("interrupted"));
      process.once("SIGTERM", () => finish("terminated"));
    },
  );

const positiveInt = (name: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name}: "${value}" is not a positive integer`);
  return n;
};

const nonNegativeInt = (name: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name}: "${value}" is not a non-negative integer`);
  return n;
};

const labelList = (value: string, prev: Record<string, string> = {}) => {
  const out = { ...prev };
  for (const part of value.split(",").map((s) => s.trim()).filter(Boolean)) {
    const eq = part.indexOf("=");
    if (eq <= 0) throw new Error(`--labels: "${part}" is not key=value`);
    out[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return out;
};

program
  .command("run")
  .description(
    "run as a fleet agent: enroll with the control plane once (identity kept in <state-dir>/agent.json, mode 0600), " +
      "then connect to NATS, run the captures the control plane assigns and stream their records",
  )
  .requiredOption("--control-plane <url>", "control plane base URL, e.g. https://hdrcap.example.com")
  .option("--token <token>", "enrollment token (hcet_…); only needed until enrolled; default $HDRCAP_ENROLLMENT_TOKEN")
  .option("--state-dir <dir>", "where the agent keeps its identity", "/var/lib/hdrcap")
  .option(
    "--labels <k=v,...>",
    "labels asked for at enrollment (repeatable); ignored when the enrollment token carries labels, and after enrollment",
    labelList,
  )
  .option("--metrics-port <port>", "serve Prometheus metrics on this port at /metrics", positiveInt("metrics-port"))
  .addOption(new Option("--log-level <level>", "log level").choices(["trace", "debug", "info", "warn", "error", "fatal"]).default("info"))
  .addOption(new Option("--desired-interval <ms>", "re-fetch the desired state this often").argParser(positiveInt("desired-interval")).default(10_000))
  .addOption(new Option("--heartbeat-interval <ms>", "heartbeat this often").argParser(positiveInt("heartbeat-interval")).default(5_000))
  .addOption(
    new Option("--max-queued-records <n>", "records of sealed batches held in memory awaiting publish; more go to the spool (dropped and counted without one)")
      .argParser(positiveInt("max-queued-records"))
      .default(200_000),
  )
  .addOption(
    new Option("--max-queued-bytes <n>", "bytes of memory the record batches awaiting publish hold (each a pooled buffer); more go to the spool (dropped and counted without one)")
      .argParser(positiveInt("max-queued-bytes"))
      .default(16 * 1024 * 1024),
  )
  .option("--spool-dir <dir>", "disk spool for record batches over the memory bounds, replayed at the next start (default <state-dir>/spool)")
  .addOption(
    new Option("--spool-max-bytes <n>", "bytes of the spool on disk at most; more are dropped and counted; 0 disables the spool")
      .argParser(nonNegativeInt("spool-max-bytes"))
      .default(1024 ** 3),
  )
  .addOption(new Option("--flush-timeout <ms>", "on SIGTERM, wait this long for unpublished records").argParser(positiveInt("flush-timeout")).default(10_000))
  .action(
    async (opts: {
      controlPlane: string;
      token?: string;
      stateDir: string;
      labels?: Record<string, string>;
      metricsPort?: number;
      logLevel: string;
      desiredInterval: number;
      heartbeatInterval: number;
      maxQueuedRecords: number;
      maxQueuedBytes: number;
      spoolDir?: string;
      spoolMaxBytes: number;
      flushTimeout: number;
    }) => {
      const { runAgent } = await import("./daemon/run-agent.ts");
      const code = await runAgent({
        controlPlaneUrl: opts.controlPlane,
        token: opts.token ?? process.env.HDRCAP_ENROLLMENT_TOKEN,
        stateDir: opts.stateDir,
        labels: opts.labels,
        metricsPort: opts.metricsPort,
        logLevel: opts.logLevel,
        desiredIntervalMs: opts.desiredInterval,
        heartbeatIntervalMs: opts.heartbeatInterval,
        maxQueuedRecords: opts.maxQueuedRecords,
        maxQueuedBytes: opts.maxQueuedBytes,
        spoolDir: opts.spoolDir,
        spoolMaxBytes: opts.spoolMaxBytes,
        flushTimeoutMs: opts.flushTimeout,
      });
      process.exit(code);
    },
  );

// Installed hosts (install.sh): enroll once with the token, run as a service from the config file, deregister on uninstall.
program
  .command("enroll")
  .description("enroll with the control plane (or confirm the stored identity) and exit; the token comes from $HDRCAP_ENROLLMENT_TOKEN")
  .requiredOption("--control-plane <url>", "control plane base URL")
  .option("--state-dir <dir>", "where the agent keeps its identity", "/var/lib/hdrcap")
  .option("--labels <k=v,...>", "labels asked for at enrollment (the token's labels win)", labelList)
  .action(async (opts: { controlPlane: string; stateDir: string; labels?: Record<string, string> }) => {
    const { enrollOnce } = await import("./install/enroll-once.ts");
    process.exit(await enrollOnce({ controlPlaneUrl: opts.controlPlane, stateDir: opts.stateDir, token: process.env.HDRCAP_ENROLLMENT_TOKEN, labels: opts.labels }));
  });

program
  .command("service")
  .description("run as the installed service: `run` with the settings of the agent configuration file (never enrolls)")
  .option("--config <file>", "agent configuration written by install.sh", DEFAULT_SERVICE_CONFIG_PATH)
  .addOption(new Option("--log-level <level>", "log level").choices(["trace", "debug", "info", "warn", "error", "fatal"]).default("info"))
  .action(async (opts: { config: string; logLevel: string }) => {
    const [{ loadServiceConfig }, { runAgent }] = await Promise.all([import("./install/service-config.ts"), import("./daemon/run-agent.ts")]);
    const config = loadServiceConfig(opts.config);
    // The service never sees a token: a host without an identity must be installed again.
    delete process.env.HDRCAP_ENROLLMENT_TOKEN;
    process.exit(await runAgent({ controlPlaneUrl: config.controlPlaneUrl, stateDir: config.stateDir, labels: config.labels, logLevel: opts.logLevel, serviceConfigPath: opts.config }));
  });

program
  .command("deregister")
  .description("remove this agent from its control plane (authenticated by the agent's own key) and exit")
  .option("--state-dir <dir>", "where the agent keeps its identity", "/var/lib/hdrcap")
  .action(async (opts: { stateDir: string }) => {
    const { deregisterSelf } = await import("./install/deregistration.ts");
    const { agentId, controlPlaneUrl } = await deregisterSelf({ stateDir: opts.stateDir });
    console.log(`deregistered ${agentId} from ${controlPlaneUrl}`);
  });

function describeFilter(opts: { port?: number[]; pid?: number[]; comm?: string; role: string }): string {
  const parts = [opts.port?.length ? `ports ${opts.port.join(",")}` : "all ports"];
  if (opts.pid?.length) parts.push(`pids ${opts.pid.join(",")}`);
  if (opts.comm) parts.push(`comm ${opts.comm}*`);
  if (opts.role !== "any") parts.push(`role ${opts.role}`);
  return parts.join(", ");
}

/** How long the capture command waits at exit for stdout to take what is buffered. */
const OUTPUT_FLUSH_TIMEOUT_MS = 5_000;

function printSummary(c: HttpCaptureCounters, reason: string, out: RecordOutputCounters): void {
  const k = c.kernel;
  const d = c.decoder;
  process.stderr.write(
    [
      `hdrcap-agent: stopped (${reason})`,
      `  records:  ${c.recordsDelivered} delivered (${d.requests} requests, ${d.responses} responses), ${c.recordsOverBudget} over budget`,
      `  kernel:   ${k.chunksEmitted} chunks emitted, ${k.ringbufFull} lost (ring buffer full), ${k.truncated} truncated`,
      `  decoder:  ${d.malformed} malformed, ${d.oversize} oversize, ${d.resyncs} resyncs, ${d.gaps} gaps`,
      `  output:   ${out.written} written, ${out.dropped} dropped (stdout too slow or closed)`,
      "",
    ].join("\n"),
  );
}

program.parseAsync().catch((err: unknown) => {
  console.error(`hdrcap-agent: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
