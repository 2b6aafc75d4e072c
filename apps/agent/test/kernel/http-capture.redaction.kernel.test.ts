/**
 * The header policy on real traffic: one exchange seen by three captures at
 * once, with the default policy (mask), hash mode and allowSensitive.
 */
import { createHmac } from "node:crypto";
import http from "node:http";
import type net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { HttpRecord } from "@hdrcap/api/records";
import { Cleanups, type RecordCapture, rawConnect, recordsOfSide, startRecordCapture } from "./http-capture-harness.ts";

const cleanups = new Cleanups();
const captures: RecordCapture[] = [];

afterEach(async () => {
  for (const c of captures.splice(0)) c.stop();
  await cleanups.run();
});

const SECRET_A = "Bearer aaaaaaaa.bbbbbbbb.cccccccc";
const SECRET_B = "Bearer zzzzzzzz";

function request(n: number, auth: string): Buffer {
  return Buffer.from(
    `GET /r/${n}?token=t0p&page=2 HTTP/1.1\r\nHost: hck\r\nAuthorization: ${auth}\r\nCookie: sid=s3cr3t; theme=dark\r\nX-Api-Key: k-123\r\nProxy-Authorization: Basic cHJveHk=\r\nX-Plain: visible\r\n\r\n`,
    "latin1",
  );
}

const SENSITIVE_REQUEST = ["Authorization", "Cookie", "X-Api-Key", "Proxy-Authorization"];

describe("HttpCapture header policy on real traffic", { timeout: 30_000 }, () => {
  it("masks credentials by default, hashes them consistently in hash mode, and keeps them with allowSensitive", async () => {
    const server = http.createServer((req, res) => {
      res.setHeader("Set-Cookie", ["sid=n3w; HttpOnly", "theme=light"]);
      res.setHeader("X-Plain", "visible");
      res.setHeader("Content-Length", "0");
      res.end();
      req.resume();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    cleanups.add(() => new Promise((r) => server.close(() => r(undefined))));
    cleanups.add(() => server.closeAllConnections());
    const port = (server.address() as net.AddressInfo).port;
    const hashKey = Buffer.from("hck-hash-key-for-tests");
    // No policy given: HttpCapture's default (mask the default-sensitive headers and query parameters).
    const mask = startRecordCapture({ filter: { ports: [port] }, policy: undefined });
    const hash = startRecordCapture({ filter: { ports: [port] }, policy: { redactMode: "hash", hashKey } });
    const clear = startRecordCapture({ filter: { ports: [port] }, policy: { redactMode: "mask", allowSensitive: true } });
    captures.push(mask, hash, clear);

    const client = await rawConnect("127.0.0.1", port);
    cleanups.add(() => client.close());
    const auths = [SECRET_A, SECRET_A, SECRET_B];
    for (const [i, auth] of auths.entries()) {
      await client.write(request(i, auth));
      await client.waitCount("HTTP/1.1 200", i + 1);
    }
    for (const c of captures) await c.waitFor((r) => r.length >= 12, "3 exchanges on both ends");
    for (const c of captures) await c.settle(60);

    const side = (c: RecordCapture, role: "client" | "server") => recordsOfSide(c.records, role, client.local);
    const value = (r: HttpRecord, name: string) => r.headers.filter((h) => h.name === name).map((h) => h.value);

    for (const role of ["client", "server"] as const) {
      const m = side(mask, role);
      const h = side(hash, role);
      const k = side(clear, role);
      expect(m.length).toBe(6);
      expect(h.length).toBe(6);
      expect(k.length).toBe(6);
      for (let i = 0; i < 6; i++) {
        // Same header names in the same order in every mode; only values differ.
        expect(m[i]!.headers.map((x) => x.name)).toEqual(k[i]!.headers.map((x) => x.name));
        expect(h[i]!.headers.map((x) => x.name)).toEqual(k[i]!.headers.map((x) => x.name));
      }
      const reqIdx = [0, 2, 4];
      for (const [n, i] of reqIdx.entries()) {
        expect(m[i]!.kind).toBe("request");
        expect(m[i]!.redacted).toEqual([...SENSITIVE_REQUEST, "?token"]);
        expect(m[i]!.path).toBe(`/r/${n}?token=[REDACTED]&page=2`);
        for (const name of SENSITIVE_REQUEST) expect(value(m[i]!, name)).toEqual(["[REDACTED]"]);
        expect(value(m[i]!, "X-Plain")).toEqual(["visible"]);

        expect(k[i]!.redacted).toEqual([]);
        expect(k[i]!.path).toBe(`/r/${n}?token=t0p&page=2`);
        expect(value(k[i]!, "Authorization")).toEqual([auths[n]]);
        expect(value(k[i]!, "Cookie")).toEqual(["sid=s3cr3t; theme=dark"]);
        expect(value(k[i]!, "X-Api-Key")).toEqual(["k-123"]);

        const hmac = (v: string) => `hmac-sha256:${createHmac("sha256", hashKey).update(v, "latin1").digest("base64url")}`;
        expect(value(h[i]!, "Authorization")).toEqual([hmac(auths[n]!)]);
        expect(value(h[i]!, "Cookie")).toEqual([hmac("sid=s3cr3t; theme=dark")]);
        expect(value(h[i]!, "X-Api-Key")).toEqual([hmac("k-123")]);
      }
      // Equal secrets hash equal, different ones differ.
      const authHash = reqIdx.map((i) => value(h[i]!, "Authorization")[0]);
      expect(authHash[0]).toBe(authHash[1]);
      expect(authHash[0]).not.toBe(authHash[2]);
      for (const i of [1, 3, 5]) {
        expect(m[i]!.kind).toBe("response");
        expect(m[i]!.redacted).toEqual(["Set-Cookie"]);
        expect(value(m[i]!, "Set-Cookie")).toEqual(["[REDACTED]", "[REDACTED]"]);
        expect(value(k[i]!, "Set-Cookie")).toEqual(["sid=n3w; HttpOnly", "theme=light"]);
        expect(value(h[i]!, "Set-Cookie")[0]).toMatch(/^hmac-sha256:[A-Za-z0-9_-]{43}$/);
        expect(value(m[i]!, "X-Plain")).toEqual(["visible"]);
      }
    }
    // No secret byte leaves the agent in mask or hash mode.
    for (const c of [mask, hash]) {
      const text = JSON.stringify(c.records);
      for (const secret of ["aaaaaaaa", "zzzzzzzz", "s3cr3t", "k-123", "cHJveHk", "n3w", "t0p"]) expect(text).not.toContain(secret);
    }
  });
});
