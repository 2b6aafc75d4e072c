/** Human-readable rendering of one HTTP record (the agent CLI's text format). */
import type { HttpRecord } from "@hdrcap/api/records";

export function formatRecordText(r: HttpRecord): string {
  const start = r.kind === "request" ? `${r.method} ${r.path} ${r.version}` : `${r.version} ${r.status} ${r.reason ?? ""}`.trimEnd();
  const latency = r.latencyMs !== null ? ` (${r.latencyMs.toFixed(2)} ms)` : "";
  const lines = [`${r.ts} ${r.comm}[${r.pid}] ${r.src.ip}:${r.src.port} → ${r.dst.ip}:${r.dst.port}${latency}`, `  ${start}`];
  for (const h of r.headers) lines.push(`  ${h.name}: ${h.value}`);
  return lines.join("\n") + "\n\n";
}
