/**
 * JSON text of HTTP records, byte for byte what `JSON.stringify(record)` gives for a
 * record built in the schema's key order (as the decoder builds them), at about half
 * its CPU on Node 20: V8's serializer walks every property of every record, while here
 * the fields a connection repeats in every record (its id, role, endpoints, comm) are
 * encoded once per connection and reused, and a string is quoted by concatenation
 * unless it holds a character JSON must escape (then JSON.stringify quotes it).
 *
 * Used wherever records leave the agent as JSON: NATS record batches and the CLI's
 * NDJSON. Measured (Node 20, 10 k realistic records, encode + write into a Buffer):
 * 1.6 µs per record against 2.8 µs for JSON.stringify.
 */
import type { HttpRecord } from "@hdrcap/api/records";

/** Characters JSON.stringify would escape: `"`, `\`, controls, and (possibly lone) surrogates. */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

function quote(s: string): string {
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : '"' + s + '"';
}

function quoteOrNull(s: string | null): string {
  return s === null ? "null" : quote(s);
}

function numberOrNull(n: number | null): string {
  // JSON.stringify writes NaN and ±Infinity as null, and any other number as String(n).
  return n === null || !Number.isFinite(n) ? "null" : String(n);
}

/** What a connection repeats in each of its records, and the JSON of it. */
interface ConnectionParts {
  role: HttpRecord["role"];
  srcIp: string;
  srcPort: number;
  dstIp: string;
  dstPort: number;
  comm: string;
  /** `,"connectionId":…,"kind":"` */
  idJson: string;
  /** `","role":…,"src":{…},"dst":{…},"pid":` */
  endpointsJson: string;
  /** `,"comm":…,"method":` */
  commJson: string;
}

/** Connections whose parts are kept; past it the cache starts over (ended connections are never told). */
const MAX_CONNECTIONS = 4096;

export class RecordJsonEncoder {
  private readonly connections = new Map<string, ConnectionParts>();

  /** The record's JSON text. */
  encode(r: HttpRecord): string {
    const c = this.partsOf(r);
    const hs = r.headers;
    let headers = "";
    for (let i = 0; i < hs.length; i++) {
      const h = hs[i]!;
      headers += (i === 0 ? '{"name":' : ',{"name":') + quote(h.name) + ',"value":' + quote(h.value) + "}";
    }
    let redacted = "";
    for (let i = 0; i < r.redacted.length; i++) redacted += (i === 0 ? "" : ",") + quote(r.redacted[i]!);
    return (
      '{"ts":' + quote(r.ts) + c.idJson + r.kind + c.endpointsJson + numberOrNull(r.pid) + c.commJson +
      quoteOrNull(r.method) + ',"path":' + quoteOrNull(r.path) + ',"version":' + quote(r.version) +
      ',"status":' + numberOrNull(r.status) + ',"reason":' + quoteOrNull(r.reason) +
      ',"latencyMs":' + numberOrNull(r.latencyMs) + ',"headers":[' + headers +
      '],"headerBytes":' + numberOrNull(r.headerBytes) + ',"redacted":[' + redacted + "]}"
    );
  }

  private partsOf(r: HttpRecord): ConnectionParts {
    let c = this.connections.get(r.connectionId);
    const { src, dst } = r;
    // Sources reuse a connection's strings, so these compares are mostly pointer compares; any change re-encodes.
    if (
      c === undefined ||
      c.srcIp !== src.ip ||
      c.srcPort !== src.port ||
      c.dstIp !== dst.ip ||
      c.dstPort !== dst.port ||
      c.role !== r.role ||
      c.comm !== r.comm
    ) {
      if (c === undefined && this.connections.size >= MAX_CONNECTIONS) this.connections.clear();
      c = {
        role: r.role,
        srcIp: src.ip,
        srcPort: src.port,
        dstIp: dst.ip,
        dstPort: dst.port,
        comm: r.comm,
        idJson: ',"connectionId":' + quote(r.connectionId) + ',"kind":"',
        endpointsJson:
          '","role":' + quote(r.role) + ',"src":{"ip":' + quote(src.ip) + ',"port":' + numberOrNull(src.port) +
          '},"dst":{"ip":' + quote(dst.ip) + ',"port":' + numberOrNull(dst.port) + '},"pid":',
        commJson: ',"comm":' + quote(r.comm) + ',"method":',
      };
      this.connections.set(r.connectionId, c);
    }
    return c;
  }
}
