/**
 * `GET /install.sh`: the installer template (deploy/install.sh) with this control plane's
 * public URL, the systemd unit (deploy/systemd/hdrcap-agent.service), the fallback
 * supervisor (deploy/hdrcap-agent-supervise.sh) and its SysV boot script
 * (deploy/sysv/hdrcap-agent.init) filled in, so a host needs only this one script plus the
 * bundle it downloads.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";

/** Where an installed agent lives; install.sh uses the same paths (a unit test checks). */
export const INSTALL_PATHS = {
  installRoot: "/opt/hdrcap-agent",
  configFile: "/etc/hdrcap/agent.json",
  pidFile: "/run/hdrcap-agent.pid",
  logFile: "/var/log/hdrcap-agent.log",
} as const;

/** Fallback supervisor's log rotation: rotate above this size, keep this many old files. */
export const LOG_ROTATION = { maxBytes: 10 * 1024 * 1024, keep: 3 } as const;
export type InstallPaths = { [K in keyof typeof INSTALL_PATHS]: string };

let cachedRoot: string | undefined;
/** The source tree holding deploy/ (found upwards from this module, whether run from src/ or dist/). */
export function repositoryRoot(): string {
  if (cachedRoot) return cachedRoot;
  for (let dir = import.meta.dirname; ; dir = dirname(dir)) {
    if (existsSync(join(dir, "deploy/install.sh"))) return (cachedRoot = dir);
    if (dir === dirname(dir)) throw new Error(`deploy/install.sh not found above ${import.meta.dirname}`);
  }
}

const template = (rel: string) => readFileSync(join(repositoryRoot(), "deploy", rel), "utf8");

function fill(text: string, values: Record<string, string>): string {
  return text.replace(/@([A-Z_]+)@/g, (whole, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`template placeholder ${whole} has no value`);
    return value;
  });
}

/** Paths go into unit lines and sh variables unquoted: keep them to plain absolute paths. */
function checkPaths(paths: InstallPaths): void {
  for (const [name, p] of Object.entries(paths)) {
    if (!/^\/[A-Za-z0-9._/-]+$/.test(p)) throw new Error(`${name}: ${JSON.stringify(p)} is not a plain absolute path`);
  }
}

export function renderSystemdUnit(paths: InstallPaths = INSTALL_PATHS): string {
  checkPaths(paths);
  return fill(template("systemd/hdrcap-agent.service"), { INSTALL_ROOT: paths.installRoot, CONFIG_FILE: paths.configFile });
}

export function renderSupervisor(paths: InstallPaths = INSTALL_PATHS): string {
  checkPaths(paths);
  return fill(template("hdrcap-agent-supervise.sh"), {
    INSTALL_ROOT: paths.installRoot,
    CONFIG_FILE: paths.configFile,
    PID_FILE: paths.pidFile,
    LOG_FILE: paths.logFile,
    LOG_MAX_BYTES: String(LOG_ROTATION.maxBytes),
    LOG_KEEP: String(LOG_ROTATION.keep),
  });
}

/** /etc/init.d/hdrcap-agent: starts the supervisor at boot on hosts without systemd. */
export function renderInitScript(paths: InstallPaths = INSTALL_PATHS): string {
  checkPaths(paths);
  return fill(template("sysv/hdrcap-agent.init"), { INSTALL_ROOT: paths.installRoot, PID_FILE: paths.pidFile });
}

/**
 * The control plane URL hosts should use: HDRCAP_PUBLIC_URL, else the origin the request
 * came to. It lands inside single quotes in a shell script, so only a clean http(s) origin
 * (plus path) is accepted.
 */
export function publicUrl(requestUrl: string, env: NodeJS.ProcessEnv = process.env): string {
  const configured = env.HDRCAP_PUBLIC_URL?.trim();
  const url = new URL(configured || requestUrl);
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error(`HDRCAP_PUBLIC_URL must be http(s), not ${url.protocol}`);
  const base = configured ? `${url.origin}${url.pathname}`.replace(/\/+$/, "") : url.origin;
  if (!/^https?:\/\/[A-Za-z0-9.:[\]/_-]+$/.test(base)) throw new Error(`${JSON.stringify(base)} is not a usable control plane URL`);
  return base;
}

const HEREDOC_END = /^HDRCAP_(UNIT|SUPERVISOR|INIT)_EOF$/m;

export function renderInstallScript(controlPlaneUrl: string, paths: InstallPaths = INSTALL_PATHS): string {
  const unit = renderSystemdUnit(paths);
  const supervisor = renderSupervisor(paths);
  const initScript = renderInitScript(paths);
  if ([unit, supervisor, initScript].some((t) => HEREDOC_END.test(t))) throw new Error("a template contains an install.sh here-document delimiter");
  return fill(template("install.sh"), {
    HDRCAP_CONTROL_PLANE_URL: controlPlaneUrl,
    HDRCAP_SYSTEMD_UNIT: unit.replace(/\n$/, ""),
    HDRCAP_SUPERVISOR: supervisor.replace(/\n$/, ""),
    HDRCAP_INIT_SCRIPT: initScript.replace(/\n$/, ""),
  });
}
