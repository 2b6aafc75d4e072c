/** Control-plane settings from the environment, validated once at start-up. */
import { z } from "zod";

const ROLES = ["api", "ingest", "scheduler"] as const;
export type Role = (typeof ROLES)[number];

export const envSchema = z.object({
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, "must be a postgres:// URL"),
  NATS_URL: z.string().regex(/^(nats|tls|wss?):\/\//, "must be a nats:// URL"),
  /** Seed of the NATS account whose key signs agent user JWTs (operator mode). */
  NATS_ACCOUNT_SEED: z.string().regex(/^SA[A-Z2-7]{56}$/, "must be a NATS account seed (SA…)").optional(),
  /** NATS URL(s) handed to agents at enrollment (comma-separated); default NATS_URL. */
  HDRCAP_AGENT_NATS_URL: z.string().optional(),
  /** Default per-key rate limit (token bucket); keys can carry their own. */
  HDRCAP_RATE_LIMIT_PER_SECOND: z.coerce.number().int().min(1).default(100),
  HDRCAP_RATE_LIMIT_BURST: z.coerce.number().int().min(1).default(200),
  /** Serve HTTPS with this PEM certificate (chain) and key; both or neither. */
  HDRCAP_TLS_CERT: z.string().optional(),
  HDRCAP_TLS_KEY: z.string().optional(),
  HOST: z.string().default("127.0.0.1"),
  PORT: z.coerce.number().int().min(0).max(65535).default(7070),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  HDRCAP_ROLES: z
    .string()
    .default("api,ingest,scheduler")
    .transform((s, ctx) => {
      const roles = s.split(",").map((r) => r.trim()).filter(Boolean);
      for (const r of roles) {
        if (!(ROLES as readonly string[]).includes(r)) ctx.addIssue({ code: "custom", message: `unknown role "${r}" (expected ${ROLES.join(", ")})` });
      }
      return roles as Role[];
    }),
});
export type Env = z.infer<typeof envSchema>;

const tlsPairSchema = envSchema.refine((e) => Boolean(e.HDRCAP_TLS_CERT) === Boolean(e.HDRCAP_TLS_KEY), {
  message: "set both HDRCAP_TLS_CERT and HDRCAP_TLS_KEY (PEM file paths), or neither",
  path: ["HDRCAP_TLS_CERT"],
});

export function loadEnv(source: NodeJS.ProcessEnv = process.env): Env {
  const parsed = tlsPairSchema.safeParse(source);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join(".")}: ${i.message}`);
    throw new Error(`invalid environment:\n${lines.join("\n")}`);
  }
  return parsed.data;
}
