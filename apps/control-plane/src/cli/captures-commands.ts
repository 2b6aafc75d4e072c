/** `hdrcap captures …` and `hdrcap agents …`: the CLI over the captures and agents API. */
import type { AgentView, CaptureView, Page, StoredRecordView } from "@hdrcap/api";
import { Option, type Command } from "commander";
import { createApiClient } from "./api-client.ts";
import { resolveLogin } from "./config.ts";
import { printTable } from "./output.ts";

interface LoginFlags {
  url?: string;
  apiKey?: string;
  json?: boolean;
}

const list = (v: string, prev: string[] = []) => [...prev, ...v.split(",").map((s) => s.trim()).filter(Boolean)];
const labels = (v: string, prev: Record<string, string> = {}) => {
  const out = { ...prev };
  for (const part of v.split(",").filter(Boolean)) {
    const eq = part.indexOf("=");
    if (eq <= 0) throw new Error(`--labels: "${part}" is not key=value`);
    out[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return out;
};

function summary(c: CaptureView): string {
  const k = c.completeness;
  return `${c.id} "${c.name}" ${c.status}${c.statusReason ? ` (${c.statusReason})` : ""}: ${k.stored} stored, ${k.records} produced, ${k.lostInKernel} lost in kernel, ${k.droppedInAgent} dropped in agent, ${k.truncated} truncated`;
}

function recordLine(r: StoredRecordView): string {
  const start = r.kind === "request" ? `${r.method} ${r.path} ${r.version}` : `${r.version} ${r.status}${r.latencyMs !== null ? ` (${r.latencyMs.toFixed(1)} ms)` : ""}`;
  return [`${r.ts} ${r.agentId} ${r.comm}[${r.pid}] ${r.src.ip}:${r.src.port} → ${r.dst.ip}:${r.dst.port}  ${start}`, ...r.headers.map((h) => `    ${h.name}: ${h.value}`)].join("\n");
}

export function registerCaptureCommands(program: Command, loginOptions: (cmd: Command) => Command): void {
  const captures = program.command("captures").description("capture jobs and their records");

  loginOptions(captures.command("create").argument("<name>"))
    .description("start a capture on the targeted agents")
    .option("--agent <ids>", "agent ids (repeatable, comma-separated)", list)
    .option("--labels <k=v,...>", "agents with these labels", labels)
    .option("--port <ports>", "ports (repeatable, comma-separated)", list)
    .option("--pid <pids>", "process ids", list)
    .option("--comm <prefix>", "process name prefix")
    .addOption(new Option("--role <role>", "client, server or any").choices(["client", "server", "any"]).default("any"))
    .option("--include <names>", "keep only these headers", list)
    .option("--redact <names>", "also redact these headers", list)
    .addOption(new Option("--redact-mode <mode>").choices(["mask", "drop", "hash"]).default("mask"))
    .option("--allow-sensitive", "keep Authorization, Cookie, … in clear")
    .option("--duration <seconds>", "stop after this long", Number)
    .option("--max-records <n>", "stop after this many records", Number)
    .option("--watch", "follow the job's progress until it ends")
    .action(async (name: string, o: LoginFlags & Record<string, any>) => {
      const api = createApiClient(resolveLogin(o));
      const body = {
        name,
        agents: { ...(o.agent ? { ids: o.agent } : {}), ...(o.labels ? { labels: o.labels } : {}) },
        filter: { ...(o.port ? { ports: o.port.map(Number) } : {}), ...(o.pid ? { pids: o.pid.map(Number) } : {}), ...(o.comm ? { comm: o.comm } : {}), role: o.role },
        headers: { ...(o.include ? { include: o.include } : {}), ...(o.redact ? { redact: o.redact } : {}), redactMode: o.redactMode, allowSensitive: Boolean(o.allowSensitive) },
        limits: { ...(o.duration ? { durationSeconds: o.duration } : {}), ...(o.maxRecords ? { maxRecords: o.maxRecords } : {}) },
      };
      const created = await api.post<CaptureView>("/v1/captures", body);
      if (o.json && !o.watch) return console.log(JSON.stringify(created, null, 2));
      console.log(`created ${summary(created)}`);
      if (o.watch) await watch(api, created.id);
    });

  loginOptions(captures.command("list"))
    .option("--status <status>", "only jobs in this state")
    .action(async (o: LoginFlags & { status?: string }) => {
      const page = await createApiClient(resolveLogin(o)).get<Page<CaptureView>>(`/v1/captures?limit=100${o.status ? `&status=${o.status}` : ""}`);
      if (o.json) return console.log(JSON.stringify(page.items, null, 2));
      printTable(
        page.items.map((c) => ({ ...c, agentsRunning: `${c.agentStatuses.filter((a) => a.status === "running").length}/${c.agentStatuses.length}`, stored: c.completeness.stored })),
        ["id", "name", "status", "agentsRunning", "stored", "createdAt"],
      );
    });

  loginOptions(captures.command("get").argument("<id>"))
    .option("--watch", "follow the job's progress (records/s per agent) until it ends")
    .action(async (id: string, o: LoginFlags & { watch?: boolean }) => {
      const api = createApiClient(resolveLogin(o));
      if (o.watch) return watch(api, id);
      const c = await api.get<CaptureView>(`/v1/captures/${encodeURIComponent(id)}`);
      if (o.json) return console.log(JSON.stringify(c, null, 2));
      console.log(summary(c));
      printTable(
        c.agentStatuses.map((a) => ({ ...a, stored: a.counters.stored, lost: a.counters.lostInKernel, dropped: a.counters.droppedInAgent })),
        ["agentId", "status", "stored", "lost", "dropped", "message"],
      );
    });

  loginOptions(captures.command("stop").argument("<id>")).action(async (id: string, o: LoginFlags) => {
    const c = await createApiClient(resolveLogin(o)).post<CaptureView>(`/v1/captures/${encodeURIComponent(id)}/stop`, {});
    console.log(o.json ? JSON.stringify(c, null, 2) : summary(c));
  });

  loginOptions(captures.command("records").argument("<id>"))
    .description("print records (filters as in the API: --filter kind=request --filter header.x-tenant=t1)")
    .option("--filter <k=v>", "query filter, repeatable", (v: string, prev: string[] = []) => [...prev, v])
    .option("--limit <n>", "records per page", "100")
    .option("--all", "follow the cursor through every page")
    .action(async (id: string, o: LoginFlags & { filter?: string[]; limit: string; all?: boolean }) => {
      const api = createApiClient(resolveLogin(o));
      const q = new URLSearchParams((o.filter ?? []).map((f) => f.split(/=(.*)/s).slice(0, 2) as [string, string]));
      q.set("limit", o.limit);
      let cursor: string | null = null;
      do {
        if (cursor) q.set("cursor", cursor);
        const page: Page<StoredRecordView> = await api.get(`/v1/captures/${encodeURIComponent(id)}/records?${q}`);
        for (const r of page.items) console.log(o.json ? JSON.stringify(r) : recordLine(r) + "\n");
        cursor = o.all ? page.nextCursor : null;
      } while (cursor);
    });

  loginOptions(captures.command("tail").argument("<id>"))
    .description("follow the capture's records live (Server-Sent Events), reconnecting where it left off")
    .option("--filter <k=v>", "query filter, repeatable", (v: string, prev: string[] = []) => [...prev, v])
    .option("--since <iso>", "also replay stored records from this time")
    .action(async (id: string, o: LoginFlags & { filter?: string[]; since?: string }) => {
      const login = resolveLogin(o);
      const q = new URLSearchParams((o.filter ?? []).map((f) => f.split(/=(.*)/s).slice(0, 2) as [string, string]));
      if (o.since) q.set("since", o.since);
      let lastId: string | undefined;
      for (;;) {
        try {
          const res = await fetch(new URL(`/v1/captures/${encodeURIComponent(id)}/stream?${q}`, login.url), {
            headers: { authorization: `Bearer ${login.apiKey}`, accept: "text/event-stream", ...(lastId ? { "last-event-id": lastId } : {}) },
          });
          if (!res.ok || !res.body) throw new Error(`${res.status}: ${await res.text()}`);
          let buffer = "";
          for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
            buffer += Buffer.from(chunk).toString("utf8");
            let end: number;
            while ((end = buffer.indexOf("\n\n")) >= 0) {
              const block = buffer.slice(0, end);
              buffer = buffer.slice(end + 2);
              const data = /^data: (.*)$/m.exec(block)?.[1];
              lastId = /^id: (.*)$/m.exec(block)?.[1] ?? lastId;
              if (data) console.log(o.json ? data : recordLine(JSON.parse(data) as StoredRecordView) + "\n");
            }
          }
        } catch (err) {
          if (err instanceof Error && /^4\d\d:/.test(err.message)) throw err;
          process.stderr.write(`hdrcap: stream interrupted (${err instanceof Error ? err.message : String(err)}); reconnecting…\n`);
        }
        await new Promise((r) => setTimeout(r, 1000));
      }
    });

  const agents = program.command("agents").description("agents of the tenant");
  loginOptions(agents.command("list"))
    .option("--status <status>", "online or offline")
    .action(async (o: LoginFlags & { status?: string }) => {
      const page = await createApiClient(resolveLogin(o)).get<Page<AgentView>>(`/v1/agents?limit=1000${o.status ? `&status=${o.status}` : ""}`);
      if (o.json) return console.log(JSON.stringify(page.items, null, 2));
      printTable(
        page.items.map((a) => ({ ...a, labels: Object.entries(a.labels).map(([k, v]) => `${k}=${v}`).join(","), kernel: a.facts.kernelRelease })),
        ["id", "hostname", "status", "labels", "kernel", "lastSeenAt"],
      );
    });
  loginOptions(agents.command("remove"))
    .argument("<id>")
    .description("remove an agent and revoke its NATS credentials at once (a compromised or retired host; it must enroll again)")
    .action(async (id: string, o: LoginFlags) => {
      const a = await createApiClient(resolveLogin(o)).delete<AgentView>(`/v1/agents/${encodeURIComponent(id)}`);
      console.log(o.json ? JSON.stringify(a, null, 2) : `removed ${a.id} (${a.hostname}); its NATS credentials are revoked`);
    });
}

/** Live progress: one status line per second (records/s per agent) until the job ends. */
async function watch(api: ReturnType<typeof createApiClient>, id: string): Promise<void> {
  const tty = process.stdout.isTTY;
  let previous = new Map<string, number>();
  let last = Date.now();
  for (;;) {
    const c = await api.get<CaptureView>(`/v1/captures/${encodeURIComponent(id)}`);
    const now = Date.now();
    const perAgent = c.agentStatuses.map((a) => {
      const rate = previous.has(a.agentId) ? ((a.counters.stored - previous.get(a.agentId)!) * 1000) / Math.max(1, now - last) : 0;
      return `${a.agentId.slice(0, 12)}… ${a.status} ${a.counters.stored} (${rate.toFixed(0)}/s)`;
    });
    previous = new Map(c.agentStatuses.map((a) => [a.agentId, a.counters.stored]));
    last = now;
    const line = `${c.status.padEnd(9)} stored ${c.completeness.stored}, lost ${c.completeness.lostInKernel}, dropped ${c.completeness.droppedInAgent} | ${perAgent.join(" | ") || "no agents"}`;
    process.stdout.write(tty ? `\r\x1b[K${line}` : `${line}\n`);
    if (["completed", "cancelled", "failed", "expired"].includes(c.status)) {
      if (tty) process.stdout.write("\n");
      console.log(summary(c));
      return;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}
