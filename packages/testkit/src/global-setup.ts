/**
 * Vitest global setup of the integration project: one real Postgres and one real
 * nats-server for the whole run, on free ports in a temp dir. Suites get their own
 * database (see freshDatabase) so they never see each other's rows.
 */
import { startNats, startPostgres } from "@hdrcap/local-services";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";

import "./provided-context.ts";

export default async function setup(project: TestProject) {
  const dir = mkdtempSync(join(tmpdir(), "hdrcap-it-"));
  chmodSync(dir, 0o755); // the postgres user must reach its data dir
  const [pg, nats] = await Promise.all([
    startPostgres({ dir: join(dir, "postgres"), ephemeral: true }),
    startNats({ dir: join(dir, "nats") }),
  ]);
  project.provide("pgAdminUrl", pg.urlFor("postgres"));
  project.provide("natsUrl", nats.url);
  project.provide("servicesDir", dir);
  return async () => {
    await Promise.allSettled([pg.stop(), nats.stop()]);
    rmSync(dir, { recursive: true, force: true });
  };
}
