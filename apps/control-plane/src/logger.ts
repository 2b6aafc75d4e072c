import { pino, type Logger } from "pino";

export type { Logger };

export function createLogger(level = process.env.LOG_LEVEL ?? "info", name = "control-plane"): Logger {
  return pino({ name, level, base: { pid: process.pid } });
}
