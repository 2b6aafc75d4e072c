/**
 * `hdrcap agents install-command`: creates an enrollment token (labels, uses, expiry) and
 * prints the line to paste on hosts: `curl -fsSL <cp>/install.sh | sudo sh -s -- --token …`.
 * The labels travel on the token, where they win over anything a host asks for.
 */
import type { CreatedEnrollmentToken } from "@hdrcap/api";
import { Option, type Command } from "commander";
import { createApiClient } from "./api-client.ts";
import { resolveLogin } from "./config.ts";

const DURATION_RE = /^(\d+)([smhd])$/;
const SECONDS = { s: 1, m: 60, h: 3600, d: 86_400 } as const;

export function parseDuration(value: string): number {
  const m = DURATION_RE.exec(value.trim());
  if (!m) throw new Error(`--expires-in: "${value}" is not a duration like 90m, 12h or 7d`);
  return Number(m[1]) * SECONDS[m[2] as keyof typeof SECONDS];
}

export function parseLabels(value: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const part of value.split(",").map((s) => s.trim()).filter(Boolean)) {
    const eq = part.indexOf("=");
    if (eq <= 0) throw new Error(`--labels: "${part}" is not key=value`);
    labels[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return labels;
}

/** The line a user pastes on a host. */
export function installLine(controlPlaneUrl: string, token: string): string {
  return `curl -fsSL ${controlPlaneUrl.replace(/\/+$/, "")}/install.sh | sudo sh -s -- --token ${token}`;
}

export function registerInstallCommand(program: Command): void {
  const agents = program.commands.find((c) => c.name() === "agents") ?? program.command("agents").description("manage agents");
  agents
    .command("install-command")
    .description("create an enrollment token and print the one-line install command for hosts")
    .option("--labels <k=v,...>", "labels every agent installed with it gets", parseLabels)
    .option("--max-uses <n>", "how many hosts may use it", (v) => Number(v), 1)
    .option("--expires-in <duration>", "how long it stays valid (e.g. 30m, 12h, 7d)", parseDuration, 86_400)
    .option("--public-url <url>", "the control plane URL as hosts reach it (default: the CLI's URL)")
    .addOption(new Option("--url <url>", "control plane URL (default: saved config)"))
    .addOption(new Option("--api-key <key>", "API key (default: saved config)"))
    .option("--json", "print JSON: the token's metadata and the line")
    .action(async (opts: { labels?: Record<string, string>; maxUses: number; expiresIn: number; publicUrl?: string; url?: string; apiKey?: string; json?: boolean }) => {
      const login = resolveLogin(opts);
      const created = await createApiClient(login).post<CreatedEnrollmentToken>("/v1/enrollment-tokens", {
        labels: opts.labels ?? {},
        maxUses: opts.maxUses,
        expiresInSeconds: opts.expiresIn,
      });
      const line = installLine(opts.publicUrl ?? login.url, created.token);
      if (opts.json) return console.log(JSON.stringify({ enrollmentToken: created.enrollmentToken, command: line }, null, 2));
      const t = created.enrollmentToken;
      console.error(`# enrollment token ${t.id}: ${t.maxUses} use${t.maxUses === 1 ? "" : "s"}, expires ${t.expiresAt}, labels ${JSON.stringify(t.labels)} (shown once)`);
      console.log(line);
    });
}
