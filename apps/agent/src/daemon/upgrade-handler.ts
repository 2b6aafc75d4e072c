/**
 * The agent's answer to the `upgrade` command: one self-update at a time (a repeated command
 * while one runs gets the same answer), the reply sent before the restart, and the restart
 * itself through the service manager (systemd) or by exiting for the supervisor.
 */
import { execFile } from "node:child_process";
import type { AgentCommandReply, AgentUpgradeCommand } from "@hdrcap/api/nats";
import type { Logger } from "pino";
import { restartMethod, RESTART_EXIT_CODE, selfUpdate, SelfUpdateError, type InstalledBundle } from "../install/self-update.ts";

export interface UpgradeHandlerOptions {
  bundle: InstalledBundle;
  controlPlaneUrl: string;
  configPath: string;
  logger: Logger;
  /** Ends the process with this exit code after the usual clean shutdown. */
  exit: (code: number) => void;
}

export function createUpgradeHandler(options: UpgradeHandlerOptions): (command: AgentUpgradeCommand) => Promise<AgentCommandReply> {
  const { bundle, logger } = options;
  let upgrading: Promise<AgentCommandReply> | null = null;

  const restart = () => {
    const method = restartMethod();
    logger.info({ method: method.kind }, "restarting onto the new version");
    if (method.kind === "exit") return options.exit(method.code);
    // systemd stops us (SIGTERM: the usual clean shutdown) and starts the new `current`.
    execFile("systemctl", ["--no-block", "restart", method.unit], (err) => {
      if (!err) return;
      logger.warn({ err: err.message }, "systemctl restart failed; exiting for the service manager to restart us");
      options.exit(RESTART_EXIT_CODE);
    });
  };

  return (command) => {
    if (command.version === bundle.version) return Promise.resolve({ v: 1, ok: true, captures: [], upgradedTo: bundle.version });
    upgrading ??= selfUpdate(command, {
      controlPlaneUrl: options.controlPlaneUrl,
      configPath: options.configPath,
      bundle,
      log: (msg, fields) => logger.info(fields ?? {}, msg),
    }).then(
      (result): AgentCommandReply => {
        logger.info(result, "upgrade installed");
        // The command channel answers when this resolves; restart once the reply is out.
        setTimeout(restart, 250);
        return { v: 1, ok: true, captures: [], upgradedTo: result.toVersion };
      },
      (err: unknown): AgentCommandReply => {
        upgrading = null;
        const message = err instanceof SelfUpdateError ? err.message : `upgrade failed: ${(err as Error).message}`;
        logger.error({ err: message, runningVersion: bundle.version }, "upgrade failed; this version keeps running");
        return { v: 1, ok: false, captures: [], error: message };
      },
    );
    return upgrading;
  };
}
