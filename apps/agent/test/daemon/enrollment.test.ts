import { enrollInputSchema, type EnrollResult } from "@hdrcap/api/agents";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { identityPath, loadIdentity } from "../../src/enrollment/agent-identity.ts";
import { EnrollmentError } from "../../src/enrollment/enroll-client.ts";
import { ensureIdentity } from "../../src/enrollment/ensure-identity.ts";
import { resolveMachineId } from "../../src/enrollment/host-facts.ts";
import { silentLogger } from "./fakes.ts";

const TOKEN = "hcet_valid_token_for_tests";
const facts = {
  hostname: "host-1",
  machineId: "0123456789abcdef0123456789abcdef",
  kernelRelease: "6.1.0",
  arch: "x64",
  btf: true,
  hooks: { syscallTracepoints: true },
  agentVersion: "0.1.0",
};

let server: Server;
let url: string;
const requests: { auth: string | undefined; body: unknown }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      const parsed = JSON.parse(body);
      requests.push({ auth: req.headers.authorization, body: parsed });
      res.setHeader("content-type", "application/json");
      if (req.url !== "/v1/enroll" || req.method !== "POST") return res.writeHead(404).end("{}");
      if (req.headers.authorization !== `Bearer ${TOKEN}`)
        return res.writeHead(401).end(JSON.stringify({ error: { code: "UNAUTHENTICATED", message: "enrollment token is invalid, used or expired", requestId: "req_1" } }));
      const input = enrollInputSchema.parse(parsed);
      const result: EnrollResult = {
        agentId: "agt_abcdefgh12",
        tenantId: "ten_1",
        natsServers: ["nats://127.0.0.1:4222"],
        natsJwt: `jwt-for-${input.natsPublicKey}`,
        inboxPrefix: "_INBOX_agt_abcdefgh12",
      };
      res.writeHead(200).end(JSON.stringify(result));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

let stateDir: string;
beforeEach(() => {
  stateDir = mkdtempSync(join(tmpdir(), "hdrcap-agent-state-"));
  requests.length = 0;
});
afterEach(() => rmSync(stateDir, { recursive: true, force: true }));

describe("enrollment", () => {
  it("enrolls with the token and a fresh nkey, and saves the identity 0600 without the token", async () => {
    const { identity, enrolled } = await ensureIdentity({ controlPlaneUrl: url, stateDir, token: TOKEN, facts, logger: silentLogger() });
    expect(enrolled).toBe(true);
    expect(requests[0]!.auth).toBe(`Bearer ${TOKEN}`);
    const sent = requests[0]!.body as { natsPublicKey: string };
    expect(sent.natsPublicKey).toMatch(/^U[A-Z2-7]{55}$/);
    expect(identity).toMatchObject({ agentId: "agt_abcdefgh12", tenantId: "ten_1", natsJwt: `jwt-for-${sent.natsPublicKey}` });
    expect(identity.natsSeed).toMatch(/^SU/);
    expect(statSync(identityPath(stateDir)).mode & 0o777).toBe(0o600);
    const files = readdirSync(stateDir).map((f) => readFileSync(join(stateDir, f), "utf8")).join("\n");
    expect(files).not.toContain(TOKEN);
    expect(JSON.stringify(requests[0]!.body)).not.toContain(identity.natsSeed);
  });

  it("reuses the stored identity for the same control plane without a token", async () => {
    await ensureIdentity({ controlPlaneUrl: url, stateDir, token: TOKEN, facts, logger: silentLogger() });
    const again = await ensureIdentity({ controlPlaneUrl: `${url}/`, stateDir, facts, logger: silentLogger() });
    expect(again.enrolled).toBe(false);
    expect(requests).toHaveLength(1);
    expect(again.identity).toEqual(loadIdentity(stateDir));
  });

  it("enrolls again when the stored identity belongs to another control plane", async () => {
    await ensureIdentity({ controlPlaneUrl: url, stateDir, token: TOKEN, facts, logger: silentLogger() });
    const other = JSON.parse(readFileSync(identityPath(stateDir), "utf8"));
    writeFileSync(identityPath(stateDir), JSON.stringify({ ...other, controlPlaneUrl: "https://elsewhere.example" }), { mode: 0o600 });
    const again = await ensureIdentity({ controlPlaneUrl: url, stateDir, token: TOKEN, facts, logger: silentLogger() });
    expect(again.enrolled).toBe(true);
  });

  it("fails with the control plane's message on a rejected token and writes nothing", async () => {
    const err = await ensureIdentity({ controlPlaneUrl: url, stateDir, token: "hcet_bad", facts, logger: silentLogger() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EnrollmentError);
    expect((err as EnrollmentError).status).toBe(401);
    expect((err as Error).message).toContain("enrollment token is invalid, used or expired");
    expect(loadIdentity(stateDir)).toBeNull();
  });

  it("asks for a token when there is no identity", async () => {
    await expect(ensureIdentity({ controlPlaneUrl: url, stateDir, facts, logger: silentLogger() })).rejects.toThrow(/HDRCAP_ENROLLMENT_TOKEN/);
  });

  it("explains an unreachable control plane", async () => {
    await expect(
      ensureIdentity({ controlPlaneUrl: "http://127.0.0.1:1", stateDir, token: TOKEN, facts, logger: silentLogger() }),
    ).rejects.toThrow(/cannot reach the control plane/);
  });
});

describe("resolveMachineId", () => {
  it("uses the machine id file when present", () => {
    const f = join(stateDir, "mid");
    writeFileSync(f, "abcdef0123456789\n");
    expect(resolveMachineId(stateDir, f)).toBe("abcdef0123456789");
  });

  it("falls back to a random id kept in the state dir", () => {
    const first = resolveMachineId(join(stateDir, "s"), join(stateDir, "missing"));
    expect(first).toMatch(/^[0-9a-f]{32}$/);
    expect(resolveMachineId(join(stateDir, "s"), join(stateDir, "missing"))).toBe(first);
  });
});

describe("enrollment labels", () => {
  it("enrolls without --labels (and says so) while the EnrollInput contract has no labels field", async () => {
    const warnings: string[] = [];
    const logger = silentLogger();
    logger.warn = ((_o: unknown, msg: string) => void warnings.push(msg)) as typeof logger.warn;
    const { enrolled } = await ensureIdentity({ controlPlaneUrl: url, stateDir, token: TOKEN, facts, labels: { env: "prod" }, logger });
    expect(enrolled).toBe(true);
    if ("labels" in enrollInputSchema.shape) expect(requests[0]!.body).toMatchObject({ labels: { env: "prod" } });
    else {
      expect(requests[0]!.body).not.toHaveProperty("labels");
      expect(warnings.join("\n")).toContain("--labels ignored");
    }
  });
});
