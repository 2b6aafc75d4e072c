/** Control-plane settings from the environment, validated once at start-up. */
import { readFileSync } from "node:fs";
import { z } from "zod";

const ROLES = ["api", "ingest", "scheduler"] as const;
export type Role = (typeof ROLES)[number];

export const envSchema = z.object({
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, "must be a postgres:// URL"),
  NATS_URL: z.string().regex(/^(nats|tls|wss?):\/\//, "must be a nats:// URL"),
  /** Seed of the NATS account whose key signs agent user JWTs (operator mode). */
  NATS_ACCOUNT_SEED: z.string().regex(/^SA[A-Z2-7]{56}$/, "must be a NATS account seed (SA…)").optional(),
  /**
   * Seed of the operator signing key (listed in the operator JWT) that signs the application
   * account JWT; with NATS_SYSTEM_CREDS it lets removal revoke an agent's NATS credentials.
   */
  NATS_OPERATOR_SIGNING_SEED: z.string().regex(/^SO[A-Z2-7]{56}$/, "must be a NATS operator (signing key) seed (SO…)").optional(),
  /** A system-account user's .creds, as a file path or the document itself, used to push account JWT updates. */
  NATS_SYSTEM_CREDS: z
    .string()
    .refine((s) => s.trim() !== "", "must be a .creds file path or a .creds document")
    .optional(),
  /** How often the scheduler role re-pushes the revocations (a nats-server that lost them converges). */
  HDRCAP_NATS_REVOCATION_REPUSH_SECONDS: z.coerce.number().int().min(1).default(60),
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

const checkedSchema = envSchema
  .refine((e) => Boolean(e.HDRCAP_TLS_CERT) === Boolean(e.HDRCAP_TLS_KEY), {
    message: "set both HDRCAP_TLS_CERT and HDRCAP_TLS_KEY (PEM file paths), or neither",
    path: ["HDRCAP_TLS_CERT"],
  })
  .refine((e) => Boolean(e.NATS_OPERATOR_SIGNING_SEED) === Boolean(e.NATS_SYSTEM_CREDS), {
    message: "set both NATS_OPERATOR_SIGNING_SEED and NATS_SYSTEM_CREDS (to revoke removed agents' NATS credentials), or neither",
    path: ["NATS_OPERATOR_SIGNING_SEED"],
  })
  .refine((e) => !e.NATS_OPERATOR_SIGNING_SEED || Boolean(e.NATS_ACCOUNT_SEED), {
    message: "revoking agents' NATS credentials re-signs the application account: NATS_ACCOUNT_SEED must be set too",
    path: ["NATS_ACCOUNT_SEED"],
  });

/** NATS_SYSTEM_CREDS is either the .creds document itself or the path of a file holding it. */
export function readSystemCreds(value: string): string {
  if (value.includes("-----BEGIN NATS USER JWT-----")) return value;
  try {
    return readFileSync(value, "utf8");
  } catch (err) {
    throw new Error(`NATS_SYSTEM_CREDS: cannot read the .creds file ${value}: ${(err as Error).message}`);
  }
}

export function loadEnv(source: NodeJS.ProcessEnv = process.env): Env {
  const parsed = checkedSchema.safeParse(source);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join(".")}: ${i.message}`);
    throw new Error(`invalid environment:\n${lines.join("\n")}`);
  }
  return parsed.data;
}
