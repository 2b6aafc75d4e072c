import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { freshDatabase, type TestDatabase } from "@hdrcap/testkit";
import { loadEnv } from "../src/env.ts";
import { startServer, type RunningServer } from "../src/server.ts";

// HTTPS from a certificate signed by a private CA, as hosts pin it with --ca.
describe("HTTPS serving", () => {
  let dir: string;
  let db: TestDatabase;
  let server: RunningServer;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "hdrcap-tls-"));
    const sh = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
    sh("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=hdrcap test CA", "-keyout", "ca.key", "-out", "ca.pem");
    sh("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key", "-out", "server.csr");
    execFileSync("sh", ["-c", "printf 'subjectAltName=IP:127.0.0.1\\n' > ext.cnf"], { cwd: dir });
    sh("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1", "-extfile", "ext.cnf", "-out", "server.pem");
    db = await freshDatabase(inject("pgAdminUrl"));
    server = await startServer(
      loadEnv({ DATABASE_URL: db.url, NATS_URL: inject("natsUrl"), PORT: "0", HDRCAP_ROLES: "api", HDRCAP_TLS_CERT: join(dir, "server.pem"), HDRCAP_TLS_KEY: join(dir, "server.key") }),
      pino({ level: "silent" }),
    );
  });
  afterAll(async () => {
    await server?.close();
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  const get = (path: string, ca?: Buffer) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(`${server.url}${path}`, { ca, rejectUnauthorized: true }, (res) => {
        let body = "";
        res.on("data", (d) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on("error", reject);
      req.end();
    });

  it("serves the API over HTTPS to clients that pin the private CA", async () => {
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const res = await get("/healthz", readFileSync(join(dir, "ca.pem")));
    expect(res).toEqual({ status: 200, body: '{"status":"ok"}' });
  });

  it("is refused by clients that do not trust that CA", async () => {
    await expect(get("/healthz")).rejects.toThrow(/self.signed|unable to verify|certificate/i);
  });

  it("refuses a certificate without its key at start-up, naming the variable", () => {
    expect(() => loadEnv({ DATABASE_URL: db.url, NATS_URL: "nats://127.0.0.1:1", HDRCAP_TLS_CERT: "/x.pem" })).toThrowError(/HDRCAP_TLS_CERT: set both/);
  });
});
