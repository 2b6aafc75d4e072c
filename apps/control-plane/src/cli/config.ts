/** The CLI's saved login: ~/.config/hdrcap/config.json, mode 0600, { url, apiKey }. */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";

export interface CliConfig {
  url: string;
  apiKey: string;
}

export function configPath(): string {
  const base = process.env.XDG_CONFIG_HOME || join(homedir(), ".config");
  return join(base, "hdrcap", "config.json");
}

export function readConfig(): CliConfig | undefined {
  const path = configPath();
  if (!existsSync(path)) return undefined;
  try {
    const parsed = JSON.parse(readFileSync(path, "utf8")) as Partial<CliConfig>;
    if (typeof parsed.url === "string" && typeof parsed.apiKey === "string") return { url: parsed.url, apiKey: parsed.apiKey };
  } catch {
    // fall through: treated as no configuration
  }
  return undefined;
}

export function writeConfig(config: CliConfig): string {
  const path = configPath();
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(path, JSON.stringify(config, null, 2) + "\n", { mode: 0o600 });
  chmodSync(path, 0o600);
  return path;
}

/** URL and key from flags, then env (HDRCAP_URL, HDRCAP_API_KEY), then the config file. */
export function resolveLogin(flags: { url?: string; apiKey?: string }): CliConfig {
  const saved = readConfig();
  const url = flags.url ?? process.env.HDRCAP_URL ?? saved?.url;
  const apiKey = flags.apiKey ?? process.env.HDRCAP_API_KEY ?? saved?.apiKey;
  if (!url || !apiKey) {
    throw new Error(`no control plane configured: run ./scripts/up.sh, or pass --url and --api-key (or set HDRCAP_URL / HDRCAP_API_KEY); looked in ${configPath()}`);
  }
  return { url, apiKey };
}
