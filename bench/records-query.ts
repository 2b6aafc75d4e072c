/**
 * `npm run bench -- records-query [--quick] [--rows N] [--iterations N]`: the managed
 * records API on one large capture. A private Postgres (fsync off: this measures
 * reads, not durability) gets N generated records (default 10,000,000; --quick
 * 200,000) by COPY, then the real app (`createApp`, real NATS) answers through
 * `app.request()` — the whole HTTP stack without a socket — with the operator key:
 *
 *  - first-page latency (limit=100), p50/p99, for header value, time window, path
 *    prefix, newest first, a deep cursor page (and an exact x-request-id lookup,
 *    the least selective case there is, for honesty);
 *  - NDJSON export of ≥ 1M rows: rows/s and this process's RSS growth;
 *  - API key verification: cached vs a forced database verification; the same for a
 *    published API's consumer key, its first page through /apis/<tenant>/<name>, and the
 *    cost of one rate-limit decision with sharing across replicas on.
 *
 * Every records query the app sends is captured (Kysely's log hook), so each case's
 * SQL is re-run under EXPLAIN (ANALYZE, BUFFERS) and summarised.
 * Prints tables; docs/benchmarks.md is edited by hand from them.
 */
import { createDb, ensureRecordPartitions, headerTerms, migrateToLatest, type Database } from "@hdrcap/db";
import { startNats, startPostgres } from "@hdrcap/local-services";
import { connect } from "@nats-io/transport-node";
import { CompiledQuery, Kysely } from "kysely";
import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import { createApp } from "../apps/control-plane/src/app.ts";
import { verifyApiKey } from "../apps/control-plane/src/services/api-keys.ts";
import { hashApiKey } from "../apps/control-plane/src/services/ids.ts";
import { ApiKeyCache, ConsumerKeyCache } from "../apps/control-plane/src/services/key-cache.ts";
import { RateLimiter } from "../apps/control-plane/src/services/rate-limiter.ts";
import { bootstrapFirstTenant } from "../apps/control-plane/src/services/tenants.ts";
import { PostgresJsPoolDialect } from "../packages/db/src/dialect.ts";
import { percentile } from "./lib/stats.ts";
import { renderMarkdown, renderText, type Table } from "./lib/table.ts";

const TARGET_P99_MS = 50;
const DAY_MS = 86_400_000;
const SPAN_MS = 3 * DAY_MS;

interface Options {
  rows: number;
  iterations: number;
  /** A case stops sampling after this long (at least 5 samples), so a slow query cannot eat the run. */
  caseBudgetMs: number;
  exportRows: number;
}

function parseOptions(argv: string[]): Options {
  const quick = argv.includes("--quick");
  const num = (flag: string, fallback: number) => {
    const i = argv.indexOf(flag);
    if (i < 0) return fallback;
    const v = Number(argv[i + 1]);
    if (!Number.isFinite(v) || v <= 0) throw new Error(`${flag} needs a positive number`);
    return Math.floor(v);
  };
  const rows = num("--rows", quick ? 200_000 : 10_000_000);
  return { rows, iterations: num("--iterations", quick ? 30 : 100), caseBudgetMs: quick ? 5_000 : 20_000, exportRows: Math.min(rows, num("--export-rows", 1_000_000)) };
}

// ---- data: a seeded generator of realistic HTTP exchanges ---------------------------------

/** mulberry32: small, fast, reproducible. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Zipf(s) over n ranks: shares, and a 64 Ki lookup table from a uniform draw to a rank (0-based). */
function zipf(n: number, s: number): { share: number[]; table: Uint16Array } {
  const w = Array.from({ length: n }, (_, k) => 1 / (k + 1) ** s);
  const total = w.reduce((a, b) => a + b, 0);
  const share = w.map((x) => x / total);
  const table = new Uint16Array(1 << 16);
  let rank = 0;
  let cum = share[0]!;
  for (let j = 0; j < table.length; j++) {
    while ((j + 0.5) / table.length > cum && rank < n - 1) cum += share[++rank]!;
    table[j] = rank;
  }
  return { share, table };
}

const pick = <T>(list: readonly T[], table: Uint16Array, r: number): T => list[table[(r * 65536) | 0]!]!;

const RESOURCES = [
  "users", "orders", "products", "search", "carts", "payments", "sessions", "inventory", "reviews", "shipments", "invoices", "coupons",
  "categories", "wishlists", "addresses", "refunds", "notifications", "recommendations", "prices", "stores", "tickets", "returns",
  "subscriptions", "plans", "webhooks", "events", "exports", "imports", "reports", "audit", "teams", "roles", "tokens", "files",
  "images", "comments", "likes", "feeds", "messages", "settings",
];
const TENANTS = Array.from({ length: 200 }, (_, k) => `tenant-${String(k + 1).padStart(3, "0")}`);
const USER_AGENTS = Array.from({ length: 30 }, (_, k) =>
  k < 10 ? `Mozilla/5.0 (X11; Linux x86_64) Chrome/${120 + k}.0.0.0 Safari/537.36` : k < 20 ? `okhttp/4.${k}.0` : `python-requests/2.${k}.0`,
);
const HOSTS = ["api.example.com", "shop.example.com", "internal.svc.cluster.local", "auth.example.com", "cdn.example.com"];
const METHODS: [string, number][] = [["GET", 0.7], ["POST", 0.18], ["PUT", 0.05], ["DELETE", 0.03], ["PATCH", 0.02], ["HEAD", 0.01], ["OPTIONS", 0.01]];
const STATUSES: [number, number][] = [[200, 0.78], [201, 0.05], [204, 0.04], [304, 0.04], [400, 0.03], [401, 0.02], [404, 0.025], [429, 0.005], [500, 0.008], [502, 0.002], [503, 0.005]];
const COMMS = ["nginx", "envoy", "node", "gunicorn", "java"];
const AGENTS = 20;

function weighted<T>(list: [T, number][], r: number): T {
  for (const [v, w] of list) if ((r -= w) < 0) return v;
  return list[list.length - 1]![0];
}

const resourceZipf = zipf(RESOURCES.length, 1.1);
const tenantZipf = zipf(TENANTS.length, 1.0);
const uaZipf = zipf(USER_AGENTS.length, 1.2);
const agentZipf = zipf(AGENTS, 0.6);

/** The rank whose share of requests is closest to `target` (for a "medium selectivity" filter value). */
function rankNear(share: number[], target: number): number {
  let best = 0;
  for (let k = 0; k < share.length; k++) if (Math.abs(share[k]! - target) < Math.abs(share[best]! - target)) best = k;
  return best;
}

const COPY_COLUMNS = "ts, tenant_id, capture_id, agent_id, connection_id, kind, direction, role, src_ip, src_port, dst_ip, dst_port, pid, comm, method, path, version, status, latency_ms, headers, header_terms, header_bytes";

interface Dataset {
  tenantId: string;
  captureId: string;
  start: number;
  /** Exchanges (request + response = 2 rows). */
  exchanges: number;
}

/**
 * COPY text lines for exchanges [from, to): the request row then its response row.
 * Values contain no tab or newline; the one backslash source is JSON's \" (doubled for COPY).
 */
function exchangeLines(d: Dataset, from: number, to: number): string {
  const r = rng(from * 2654435761);
  const agentIds = Array.from({ length: AGENTS }, (_, a) => `agt_bench${String(a).padStart(4, "0")}x`);
  let out = "";
  for (let e = from; e < to; e++) {
    const a = agentZipf.table[(r() * 65536) | 0]!;
    const agentId = agentIds[a]!;
    const serverIp = `10.0.0.${a + 10}`;
    const clientIp = `10.1.${(r() * 250) | 0}.${(r() * 250) | 0}`;
    const clientPort = 20_000 + ((r() * 40_000) | 0);
    const pid = 1000 + a * 7;
    const comm = COMMS[a % COMMS.length]!;
    const connectionId = `${agentId}:${pid}:${(r() * 1000) | 0}`;
    const t = d.start + Math.floor((e * SPAN_MS) / d.exchanges);
    const latency = 0.3 + r() ** 3 * 400;
    const method = weighted(METHODS, r());
    const resource = pick(RESOURCES, resourceZipf.table, r());
    const p = r();
    const reqPath = p < 0.55 ? `/api/v1/${resource}/${(r() * 1e6) | 0}` : p < 0.85 ? `/api/v1/${resource}` : p < 0.95 ? `/api/v1/${resource}?page=${(r() * 50) | 0}` : p < 0.98 ? "/healthz" : `/static/app.${(r() * 100) | 0}.js`;
    const requestId = `${((r() * 4294967296) >>> 0).toString(16).padStart(8, "0")}-${e.toString(16)}`;
    const hasBody = method === "POST" || method === "PUT" || method === "PATCH";

    const req: [string, string][] = [
      ["Host", HOSTS[a % HOSTS.length]!],
      ["User-Agent", pick(USER_AGENTS, uaZipf.table, r())],
      ["Accept", r() < 0.7 ? "application/json" : "*/*"],
      ["Accept-Encoding", "gzip, deflate, br"],
      ["Connection", "keep-alive"],
      ["X-Request-Id", requestId],
    ];
    if (r() < 0.9) req.push(["X-Tenant", pick(TENANTS, tenantZipf.table, r())]);
    if (r() < 0.5) req.push(["Accept-Language", "en-US,en;q=0.9"]);
    if (r() < 0.6) req.push(["traceparent", `00-${requestId}${e.toString(16).padStart(16, "0")}-${((r() * 4294967296) >>> 0).toString(16)}-01`]);
    if (r() < 0.4) req.push(["X-Forwarded-For", `203.0.${(r() * 255) | 0}.${(r() * 255) | 0}`]);
    if (hasBody) req.push(["Content-Type", "application/json"], ["Content-Length", String(50 + ((r() * 4000) | 0))]);
    else if (r() < 0.3) req.push(["Authorization", "[REDACTED]"]);
    // A rare header for the hasHeader case, on every 4000th request (no draw: the other values stay as they were).
    if (e % 4000 === 1234) req.push(["X-Debug-Trace", "1"]);

    const status = weighted(STATUSES, r());
    const res: [string, string][] = [
      ["Date", new Date(t).toUTCString()],
      ["Content-Type", "application/json"],
      ["Content-Length", String(status === 204 || status === 304 ? 0 : 20 + ((r() * 20_000) | 0))],
      ["Server", comm],
      ["X-Request-Id", requestId],
      ["Connection", "keep-alive"],
    ];
    if (r() < 0.5) res.push(["Cache-Control", r() < 0.5 ? "no-store" : "max-age=60"]);
    if (r() < 0.3) res.push(["ETag", `"${((r() * 4294967296) >>> 0).toString(36)}"`]);
    if (r() < 0.2) res.push(["Set-Cookie", "[REDACTED]"]);
    if (r() < 0.4) res.push(["Vary", "Accept-Encoding"]);
    if (r() < 0.3) res.push(["x-envoy-upstream-service-time", String(Math.round(latency))]);

    const reqTs = new Date(t).toISOString();
    const resTs = new Date(t + Math.round(latency)).toISOString();
    out += row(d, reqTs, agentId, connectionId, "request", "ingress", clientIp, clientPort, serverIp, 8080, pid, comm, method, reqPath, "\\N", "\\N", req);
    out += row(d, resTs, agentId, connectionId, "response", "egress", serverIp, 8080, clientIp, clientPort, pid, comm, "\\N", "\\N", String(status), latency.toFixed(3), res);
  }
  return out;
}

function row(
  d: Dataset, ts: string, agentId: string, connectionId: string, kind: string, direction: string, srcIp: string, srcPort: number, dstIp: string, dstPort: number,
  pid: number, comm: string, method: string, reqPath: string, status: string, latency: string, headers: [string, string][],
): string {
  let bytes = 0;
  for (const [n, v] of headers) bytes += n.length + v.length + 4;
  // a text[] literal (values hold quotes, commas and spaces), its backslashes doubled for COPY like the JSON's
  const terms = headerTerms(headers.map(([name, value]) => ({ name, value }))).map((t) => `"${t.replace(/[\\"]/g, "\\$&")}"`).join(",").replaceAll("\\", "\\\\");
  return `${ts}\t${d.tenantId}\t${d.captureId}\t${agentId}\t${connectionId}\t${kind}\t${direction}\tserver\t${srcIp}\t${srcPort}\t${dstIp}\t${dstPort}\t${pid}\t${comm}\t${method}\t${reqPath}\tHTTP/1.1\t${status}\t${latency}\t${JSON.stringify(headers).replaceAll("\\", "\\\\")}\t{${terms}}\t${bytes}\n`;
}

/** COPY over `streams` connections, each taking every streams-th chunk of exchanges, with a rows/s progress line. */
async function loadRecords(sql: ReturnType<typeof createDb>["sql"], d: Dataset, streams: number): Promise<{ seconds: number }> {
  const CHUNK = 2_500;
  const chunks = Math.ceil(d.exchanges / CHUNK);
  let rowsDone = 0;
  const started = performance.now();
  const progress = setInterval(() => {
    const s = (performance.now() - started) / 1000;
    process.stdout.write(`  loaded ${rowsDone.toLocaleString("en-US")} / ${(d.exchanges * 2).toLocaleString("en-US")} rows, ${Math.round(rowsDone / s).toLocaleString("en-US")} rows/s, ${s.toFixed(0)} s\n`);
  }, 10_000);
  try {
    await Promise.all(
      Array.from({ length: streams }, async (_, k) => {
        const writable = await sql.unsafe(`copy records (${COPY_COLUMNS}) from stdin`).writable();
        await new Promise<void>((resolve, reject) => {
          writable.on("error", reject);
          writable.on("finish", resolve);
          let c = k;
          const pump = () => {
            while (c < chunks) {
              const from = c * CHUNK;
              const to = Math.min(d.exchanges, from + CHUNK);
              c += streams;
              rowsDone += (to - from) * 2;
              if (!writable.write(exchangeLines(d, from, to))) return void writable.once("drain", pump);
            }
            writable.end();
          };
          pump();
        });
      }),
    );
  } finally {
    clearInterval(progress);
  }
  const seconds = (performance.now() - started) / 1000;
  process.stdout.write(`\r  loaded ${(d.exchanges * 2).toLocaleString("en-US")} rows in ${seconds.toFixed(0)} s (${Math.round((d.exchanges * 2) / seconds).toLocaleString("en-US")} rows/s)          \n`);
  return { seconds };
}

// ---- measuring through the app -------------------------------------------------------------

interface CaseResult {
  name: string;
  query: string;
  samples: number[];
  items: number;
  sql: CompiledQuery | undefined;
}

function ms(v: number): string {
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}

function encodeCursorFor(ts: Date, id: string): string {
  // The API's opaque cursor: base64url("<ISO time>|<id>"), as services/records.ts writes it.
  return Buffer.from(`${ts.toISOString()}|${id}`).toString("base64url");
}

function machine(): string {
  const cpu = os.cpus()[0]?.model.trim() ?? "unknown CPU";
  let pg = "";
  try {
    pg = execFileSync("sh", ["-c", "ls /usr/lib/postgresql | sort -n | tail -1"], { encoding: "utf8" }).trim();
  } catch {}
  return `${os.cpus().length} cores (${cpu}), ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM, Linux ${os.release()}, Node ${process.version}, PostgreSQL ${pg || "?"}; ${new Date().toUTCString()}; load average before the run ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`;
}

export async function runRecordsQueryBench(argv: string[]): Promise<void> {
  const o = parseOptions(argv);
  const machineLine = machine();
  const dir = mkdtempSync(path.join(os.tmpdir(), "hdrcap-bench-records-"));
  chmodSync(dir, 0o755);
  console.log(`records-query: ${o.rows.toLocaleString("en-US")} records, ${o.iterations} iterations per case, export of ${o.exportRows.toLocaleString("en-US")} rows`);
  const [pg, nats] = await Promise.all([startPostgres({ dir: path.join(dir, "pg"), ephemeral: true }), startNats({ dir: path.join(dir, "nats") })]);
  const handle = createDb(pg.url, { max: 10 });
  let lastRecordsQuery: CompiledQuery | undefined;
  // The app's own Db, with a log hook that keeps the last query it ran on records (for EXPLAIN).
  const appDb = new Kysely<Database>({
    dialect: new PostgresJsPoolDialect(handle.sql),
    log: (event) => {
      if (/from "records"/.test(event.query.sql)) lastRecordsQuery = event.query;
    },
  });
  const nc = await connect({ servers: nats.url });
  try {
    await migrateToLatest(handle.db);
    const boot = (await bootstrapFirstTenant(handle.db, { slug: "bench", name: "Bench" }))!;
    const key = boot.key;
    const exchanges = Math.ceil(o.rows / 2);
    const start = Math.floor((Date.now() - SPAN_MS - DAY_MS) / DAY_MS) * DAY_MS;
    const d: Dataset = { tenantId: boot.tenant.id, captureId: "cap_benchrecords01", start, exchanges };
    await ensureRecordPartitions(handle.db, new Date(start), 4);
    await handle.sql`insert into captures (id, tenant_id, name, protocol, selector, filter, headers, limits, hash_key, status)
                     values (${d.captureId}, ${d.tenantId}, 'records-query bench', 'http', '{}', '{}', '{}', '{}', 'k', 'stopped')`;
    const load = await loadRecords(handle.sql, d, 2);
    const analyzeStarted = performance.now();
    await handle.sql`analyze records`;
    const size = (await handle.sql`select pg_size_pretty(sum(pg_total_relation_size(c.oid))) as total, pg_size_pretty(sum(pg_indexes_size(c.oid))) as indexes
      from pg_inherits i join pg_class c on c.oid = i.inhrelid where i.inhparent = 'records'::regclass`)[0] as { total: string; indexes: string };
    console.log(`  analyze ${((performance.now() - analyzeStarted) / 1000).toFixed(1)} s; records on disk ${size.total} (indexes ${size.indexes})`);

    const app = createApp({ db: appDb, nats: nc, logger: pino({ level: "silent" }), defaultRateLimit: { perSecond: 1e9, burst: 1e9 } });
    const auth = { authorization: `Bearer ${key}` };
    const get = (url: string) => app.request(url, { headers: auth });

    // Filter values of known selectivity, from the generator's own distributions.
    const tenantRank = rankNear(tenantZipf.share, 0.01 / 0.45); // ≈ 1 % of all records (requests are half, 90 % carry x-tenant)
    const tenantShare = tenantZipf.share[tenantRank]! * 0.9 * 0.5;
    const resourceRank = rankNear(resourceZipf.share, 0.04);
    const resourceShare = resourceZipf.share[resourceRank]! * 0.98 * 0.5;
    const windowFrom = new Date(start + DAY_MS + 13 * 3_600_000);
    const windowTo = new Date(windowFrom.getTime() + 3_600_000);
    const mid = new Date(start + SPAN_MS / 2);
    const [midRow] = (await handle.sql`select ts, id::text from records where capture_id = ${d.captureId} and tenant_id = ${d.tenantId} and ts >= ${mid} order by ts, id limit 1`) as unknown as [{ ts: Date; id: string }];
    const late = Math.min(exchanges - 1, Math.floor(exchanges * 0.97));
    const [lateRow] = (await handle.sql`select headers->5->>1 as id from records where capture_id = ${d.captureId} and tenant_id = ${d.tenantId}
                                         and ts >= ${new Date(start + Math.floor((late * SPAN_MS) / exchanges))} and kind = 'request' order by ts, id limit 1`) as unknown as [{ id: string }];
    const base = `/v1/captures/${d.captureId}/records?limit=100`;
    const cases: { name: string; query: string; filtered: boolean }[] = [
      { name: `header value (x-tenant=${TENANTS[tenantRank]}, ${(tenantShare * 100).toFixed(1)} % of rows)`, query: `${base}&header.x-tenant=${TENANTS[tenantRank]}`, filtered: true },
      { name: "time window (1 hour, since/until)", query: `${base}&since=${windowFrom.toISOString()}&until=${windowTo.toISOString()}`, filtered: true },
      { name: `path prefix (/api/v1/${RESOURCES[resourceRank]}, ${(resourceShare * 100).toFixed(1)} % of rows)`, query: `${base}&pathPrefix=/api/v1/${RESOURCES[resourceRank]}`, filtered: true },
      { name: "no filter, newest first (order=desc)", query: `${base}&order=desc`, filtered: false },
      { name: "deep cursor page (middle of the capture)", query: `${base}&cursor=${encodeCursorFor(midRow.ts, midRow.id)}`, filtered: false },
      { name: "header value, 1 row (x-request-id at 97 %)", query: `${base}&header.x-request-id=${lateRow.id}`, filtered: true },
      { name: "hasHeader, common (etag, 15 % of rows)", query: `${base}&hasHeader=etag`, filtered: true },
      { name: "hasHeader, rare (x-debug-trace, 0.0125 % of rows)", query: `${base}&hasHeader=x-debug-trace`, filtered: true },
    ];

    const results: CaseResult[] = [];
    for (const c of cases) {
      let items = 0;
      await (await get(c.query)).arrayBuffer(); // warm the key cache and the pages
      const samples: number[] = [];
      const caseStarted = performance.now();
      while (samples.length < o.iterations && (samples.length < 5 || performance.now() - caseStarted < o.caseBudgetMs)) {
        const t0 = performance.now();
        const res = await get(c.query);
        const body = (await res.json()) as { items?: unknown[] };
        samples.push(performance.now() - t0);
        if (res.status !== 200) throw new Error(`${c.query}: ${res.status} ${JSON.stringify(body)}`);
        items = body.items?.length ?? 0;
      }
      results.push({ name: c.name, query: c.query, samples, items, sql: lastRecordsQuery });
      console.log(`  ${c.name}: p50 ${ms(percentile(samples, 0.5))} ms, p99 ${ms(percentile(samples, 0.99))} ms over ${samples.length}, ${items} items`);
    }

    // Export: NDJSON of a window holding exportRows rows, counted as they stream; RSS sampled meanwhile.
    const exportUntil = new Date(start + Math.ceil((Math.ceil(o.exportRows / 2) * SPAN_MS) / exchanges));
    const rssBefore = process.memoryUsage().rss;
    let rssPeak = rssBefore;
    const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 50);
    const exportStarted = performance.now();
    const res = await get(`/v1/captures/${d.captureId}/records?format=ndjson&until=${exportUntil.toISOString()}`);
    let exported = 0;
    let bytes = 0;
    const reader = res.body!.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      bytes += value.length;
      for (let i = value.indexOf(10); i >= 0; i = value.indexOf(10, i + 1)) exported++;
    }
    const exportSeconds = (performance.now() - exportStarted) / 1000;
    clearInterval(sampler);
    const rssAfter = process.memoryUsage().rss;
    console.log(`  export: ${exported.toLocaleString("en-US")} rows, ${(bytes / 2 ** 20).toFixed(0)} MiB in ${exportSeconds.toFixed(1)} s`);

    // Key verification: the cache the app uses (warm), a cache that always misses (the database path), and /v1/whoami.
    const timeIt = async (n: number, f: () => Promise<unknown>) => {
      const s: number[] = [];
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        await f();
        s.push(performance.now() - t0);
      }
      return s;
    };
    const warmCache = new ApiKeyCache(handle.db, undefined);
    await warmCache.verify(key);
    const coldCache = new ApiKeyCache(handle.db, undefined, 0);
    const verifyWarm = await timeIt(1000, () => warmCache.verify(key));
    const verifyCold = await timeIt(300, () => coldCache.verify(key));
    const verifyDirect = await timeIt(300, () => verifyApiKey(handle.db, key));
    const whoami = await timeIt(300, async () => (await get("/v1/whoami")).arrayBuffer());

    // Published API consumers: the same records behind /apis/<tenant>/<name>, and their key cache.
    const post = async (url: string, body: unknown) => {
      const r = await app.request(url, { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify(body) });
      if (r.status >= 300) throw new Error(`${url}: ${r.status} ${await r.text()}`);
      return (await r.json()) as Record<string, any>;
    };
    const served = await post("/v1/apis", { name: "bench-records", captureId: d.captureId, fields: ["ts", "method", "path", "headers"], filter: { kind: "request" } });
    await post(`/v1/apis/${served.id}/publish`, {});
    const consumer = await post(`/v1/apis/${served.id}/consumers`, { name: "bench" });
    const consumerCache = new ConsumerKeyCache(handle.db, undefined);
    await consumerCache.byHash(hashApiKey(consumer.key));
    // As the serving middleware does it: SHA-256 of the presented key, then the lookup.
    const consumerWarm = await timeIt(1000, () => consumerCache.byHash(hashApiKey(consumer.key)));
    const consumerCold = await timeIt(300, () => new ConsumerKeyCache(handle.db, undefined).byHash(hashApiKey(consumer.key)));
    const consumerGet = (url: string) => app.request(url, { headers: { authorization: `Bearer ${consumer.key}` } });
    const servedUrl = `/apis/bench/bench-records?limit=100&since=${windowFrom.toISOString()}`;
    await (await consumerGet(servedUrl)).arrayBuffer();
    const servedPage = await timeIt(100, async () => {
      const r = await consumerGet(servedUrl);
      if (r.status !== 200) throw new Error(`${servedUrl}: ${r.status} ${await r.text()}`);
      return r.arrayBuffer();
    });
    const sharedLimiter = new RateLimiter({ perSecond: 1e9, burst: 1e9 }, nc);
    const limiterStarted = process.hrtime.bigint();
    for (let i = 0; i < 1_000_000; i++) sharedLimiter.take(`key_${i % 1000}`);
    const limiterNs = Number(process.hrtime.bigint() - limiterStarted) / 1_000_000;
    sharedLimiter.close();
    consumerCache.close();

    // EXPLAIN every case's SQL as the app sent it.
    const plans: string[] = [];
    for (const r of results) {
      if (!r.sql) continue;
      const lines = ((await handle.sql.unsafe(`explain (analyze, buffers) ${r.sql.sql}`, r.sql.parameters as never[])) as unknown as Record<string, string>[]).map((x) => x["QUERY PLAN"]!);
      plans.push(`-- ${r.name} (p99 ${ms(percentile(r.samples, 0.99))} ms)\n${r.sql.sql}\n${lines.join("\n")}`);
    }

    const table: Table = {
      columns: ["case (first page, limit=100)", "n", "p50", "p99", "max", "items", `target p99 ≤ ${TARGET_P99_MS} ms`],
      rows: results.map((r, i) => [
        r.name,
        String(r.samples.length),
        `${ms(percentile(r.samples, 0.5))} ms`,
        `${ms(percentile(r.samples, 0.99))} ms`,
        `${ms(Math.max(...r.samples))} ms`,
        String(r.items),
        cases[i]!.filtered ? (percentile(r.samples, 0.99) <= TARGET_P99_MS ? "met" : "**not met**") : "(not filtered)",
      ]),
    };
    const other: Table = {
      columns: ["measure", "value"],
      rows: [
        ["load: COPY into records (2 streams, indexed, partitioned)", `${o.rows.toLocaleString("en-US")} rows in ${load.seconds.toFixed(0)} s, ${Math.round(o.rows / load.seconds).toLocaleString("en-US")} rows/s; ${size.total} on disk (indexes ${size.indexes})`],
        ["export format=ndjson", `${exported.toLocaleString("en-US")} rows, ${(bytes / 2 ** 20).toFixed(0)} MiB in ${exportSeconds.toFixed(1)} s: ${Math.round(exported / exportSeconds).toLocaleString("en-US")} rows/s`],
        ["RSS during export (server + client, one process)", `${(rssBefore / 2 ** 20).toFixed(0)} MiB before, peak ${(rssPeak / 2 ** 20).toFixed(0)} MiB (+${((rssPeak - rssBefore) / 2 ** 20).toFixed(0)} MiB), ${(rssAfter / 2 ** 20).toFixed(0)} MiB after`],
        ["key verification, cache warm (ApiKeyCache.verify)", `p50 ${(percentile(verifyWarm, 0.5) * 1000).toFixed(1)} µs, p99 ${(percentile(verifyWarm, 0.99) * 1000).toFixed(1)} µs`],
        ["key verification, forced cold (cache TTL 0 → Postgres)", `p50 ${ms(percentile(verifyCold, 0.5))} ms, p99 ${ms(percentile(verifyCold, 0.99))} ms`],
        ["verifyApiKey direct (SHA-256 + 1 query)", `p50 ${ms(percentile(verifyDirect, 0.5))} ms, p99 ${ms(percentile(verifyDirect, 0.99))} ms`],
        ["GET /v1/whoami through the app (cache warm)", `p50 ${ms(percentile(whoami, 0.5))} ms, p99 ${ms(percentile(whoami, 0.99))} ms`],
        ["consumer key verification, cache warm (SHA-256 + ConsumerKeyCache.byHash)", `p50 ${(percentile(consumerWarm, 0.5) * 1000).toFixed(1)} µs, p99 ${(percentile(consumerWarm, 0.99) * 1000).toFixed(1)} µs`],
        ["consumer key verification, cold (SHA-256 + 1 query)", `p50 ${ms(percentile(consumerCold, 0.5))} ms, p99 ${ms(percentile(consumerCold, 0.99))} ms`],
        ["GET /apis/<tenant>/<name> first page (limit=100, since) through the app", `p50 ${ms(percentile(servedPage, 0.5))} ms, p99 ${ms(percentile(servedPage, 0.99))} ms`],
        ["rate limit decision (RateLimiter.take, shared through NATS, 1000 keys)", `${limiterNs.toFixed(0)} ns per request`],
      ],
    };
    console.log(`\n${renderText(table)}\n\n${renderText(other)}\n`);
    console.log(`Machine: ${machineLine}\n\n${renderMarkdown(table)}\n\n${renderMarkdown(other)}\n`);
    console.log(`EXPLAIN (ANALYZE, BUFFERS) of each case as the app sent it:\n\n${plans.join("\n\n")}`);
    warmCache.close();
    coldCache.close();
  } finally {
    await nc.close().catch(() => {});
    await handle.close().catch(() => {});
    await Promise.allSettled([pg.stop(), nats.stop()]);
    rmSync(dir, { recursive: true, force: true });
  }
}
