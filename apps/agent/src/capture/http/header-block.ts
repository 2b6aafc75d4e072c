/**
 * HTTP/1.x header block syntax over Buffer ranges: finding where a block ends,
 * judging whether bytes look like a start line (used to resynchronise), and
 * parsing a complete block into its start line, fields and body framing.
 * Strings are created only for what ends up in a record, decoded as latin1
 * (one byte, one code unit), so any byte sequence round-trips.
 */
import type { HeaderField } from "@hdrcap/api/records";

const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const HT = 0x09;
const COLON = 0x3a;

/** Longest start line considered plausible (request targets can be long). */
export const MAX_START_LINE_BYTES = 16 * 1024;
/** Longest method token considered plausible. */
const MAX_METHOD_BYTES = 24;

/** RFC 9110 tchar: the bytes allowed in a header field name. */
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
  TCHAR[c.charCodeAt(0)] = 1;
}
/**
 * Methods are case sensitive and every registered one is upper case; accepting
 * only A-Z, '-' and '_' keeps resynchronisation from locking onto prose.
 */
const METHOD_CHAR = new Uint8Array(256);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZ-_") METHOD_CHAR[c.charCodeAt(0)] = 1;

const HTTP_1_PREFIX = Buffer.from("HTTP/1.", "latin1");

export type StartLineVerdict = "yes" | "no" | "maybe";

export type MessageFraming =
  /** Neither Content-Length nor Transfer-Encoding. */
  | "none"
  | "length"
  | "chunked"
  /** Transfer-Encoding whose final coding is not chunked. */
  | "other-coding";

export interface ParsedHead {
  kind: "request" | "response";
  method: string | null;
  target: string | null;
  /** "HTTP/1.1", "HTTP/1.0" (the protocol token as on the wire). */
  version: string;
  status: number | null;
  reason: string | null;
  /** Wire order, original case, duplicates kept, obs-folds joined. */
  fields: HeaderField[];
  /** Start line through the terminating empty line. */
  headerBytes: number;
  framing: MessageFraming;
  /** Declared body length when framing is "length", otherwise -1. */
  contentLength: number;
}

export type HeadParseError = "bad-start-line" | "bad-header";

function isDigit(b: number): boolean {
  return b >= 0x30 && b <= 0x39;
}

/** Index just past the empty line ending the block that starts before `from`, or -1. */
export function findHeaderBlockEnd(buf: Buffer, from: number, end: number): number {
  let i = from;
  for (;;) {
    const lf = buf.indexOf(LF, i);
    if (lf < 0 || lf >= end) return -1;
    const next = lf + 1;
    if (next < end) {
      const b = buf[next]!;
      if (b === LF) return next + 1;
      if (b === CR && next + 1 < end && buf[next + 1] === LF) return next + 2;
    }
    i = next;
  }
}

/** Matches "HTTP/1.d" at `p`; "maybe" when the bytes run out first. */
function matchVersion(buf: Buffer, p: number, end: number): StartLineVerdict {
  for (let i = 0; i < 8; i++) {
    if (p + i >= end) return "maybe";
    const b = buf[p + i]!;
    if (i < 7 ? b !== HTTP_1_PREFIX[i] : !isDigit(b)) return "no";
  }
  return "yes";
}

/** "HTTP/1.d ddd" followed by SP, CR or LF. */
function classifyStatusLine(buf: Buffer, start: number, end: number): StartLineVerdict {
  const version = matchVersion(buf, start, end);
  if (version !== "yes") return version;
  for (let i = 8; i < 13; i++) {
    const p = start + i;
    if (p >= end) return "maybe";
    const b = buf[p]!;
    if (i === 8) {
      if (b !== SP) return "no";
    } else if (i === 9) {
      if (b < 0x31 || b > 0x39) return "no";
    } else if (i < 12) {
      if (!isDigit(b)) return "no";
    } else if (b !== SP && b !== CR && b !== LF) {
      return "no";
    }
  }
  return "yes";
}

/** METHOD SP target SP HTTP/1.d [CR] LF */
function classifyRequestLine(buf: Buffer, start: number, end: number): StartLineVerdict {
  const limit = start + MAX_START_LINE_BYTES;
  let p = start;
  for (;;) {
    if (p >= end) return "maybe";
    const b = buf[p]!;
    if (METHOD_CHAR[b] !== 1) break;
    if (++p - start > MAX_METHOD_BYTES) return "no";
  }
  if (p === start || buf[p] !== SP) return "no";
  p++;
  if (p >= end) return "maybe";
  const first = buf[p]!;
  // origin-form "/", asterisk-form "*", absolute-form "http:" or authority-form "host:port"
  const lower = first | 0x20;
  if (first !== 0x2f && first !== 0x2a && !(lower >= 0x61 && lower <= 0x7a) && !isDigit(first)) {
    return "no";
  }
  for (;;) {
    if (p >= limit) return "no";
    if (p >= end) return "maybe";
    const b = buf[p]!;
    if (b === SP) break;
    if (b < SP || b === 0x7f) return "no";
    p++;
  }
  p++;
  const version = matchVersion(buf, p, end);
  if (version !== "yes") return version;
  p += 8;
  if (p >= end) return "maybe";
  if (buf[p] === LF) return "yes";
  if (buf[p] !== CR) return "no";
  if (p + 1 >= end) return "maybe";
  return buf[p + 1] === LF ? "yes" : "no";
}

/**
 * Whether the bytes from `start` can be the start line of a message:
 * "maybe" when they are a valid prefix but the line is not complete yet.
 */
export function classifyStartLine(buf: Buffer, start: number, end: number): StartLineVerdict {
  if (start >= end) return "maybe";
  const asResponse = classifyStatusLine(buf, start, end);
  if (asResponse === "yes") return "yes";
  const asRequest = classifyRequestLine(buf, start, end);
  if (asRequest !== "no") return asRequest;
  return asResponse;
}

function versionString(buf: Buffer, p: number): string {
  const minor = buf[p + 7];
  if (minor === 0x31) return "HTTP/1.1";
  if (minor === 0x30) return "HTTP/1.0";
  return buf.toString("latin1", p, p + 8);
}

/** Decimal Content-Length, allowing a list of identical values ("5, 5"); -1 if invalid. */
function parseContentLength(value: string): number {
  let result = -1;
  let current = -1;
  let digits = 0;
  let spaceAfterDigits = false;
  for (let i = 0; i <= value.length; i++) {
    const c = i < value.length ? value.charCodeAt(i) : 0x2c;
    if (c >= 0x30 && c <= 0x39) {
      if (spaceAfterDigits || ++digits > 15) return -1;
      current = (current < 0 ? 0 : current * 10) + (c - 0x30);
    } else if (c === SP || c === HT) {
      if (digits > 0) spaceAfterDigits = true;
    } else if (c === 0x2c) {
      if (current < 0 || (result >= 0 && result !== current)) return -1;
      result = current;
      current = -1;
      digits = 0;
      spaceAfterDigits = false;
    } else {
      return -1;
    }
  }
  return result;
}

function finalCodingIsChunked(value: string): boolean {
  const comma = value.lastIndexOf(",");
  const last = (comma < 0 ? value : value.slice(comma + 1)).trim();
  return last.length === 7 && last.toLowerCase() === "chunked";
}

/** Framing of the body announced by the fields; null when contradictory or invalid. */
function framingOf(fields: HeaderField[]): { framing: MessageFraming; contentLength: number } | null {
  let contentLength = -1;
  let transferEncoding: string | null = null;
  for (const field of fields) {
    const name = field.name;
    if (name.length === 14 && name.toLowerCase() === "content-length") {
      const length = parseContentLength(field.value);
      if (length < 0 || (contentLength >= 0 && contentLength !== length)) return null;
      contentLength = length;
    } else if (name.length === 17 && name.toLowerCase() === "transfer-encoding") {
      if (field.value.trim() !== "") transferEncoding = field.value;
    }
  }
  // Transfer-Encoding overrides Content-Length (RFC 9112 §6.3).
  if (transferEncoding !== null) {
    return { framing: finalCodingIsChunked(transferEncoding) ? "chunked" : "other-coding", contentLength: -1 };
  }
  return contentLength >= 0 ? { framing: "length", contentLength } : { framing: "none", contentLength: -1 };
}

/**
 * Parses the complete block buf[start, end), where `end` is just past the
 * terminating empty line (as returned by findHeaderBlockEnd).
 *
 * The block is decoded to one string and every name and value is a slice of
 * it: one native call per block instead of two per field (the strings
 * share the block's storage while a record lives, which is not longer).
 */
export function parseHeaderBlock(buf: Buffer, start: number, end: number): ParsedHead | HeadParseError {
  const firstLf = buf.indexOf(LF, start);
  if (firstLf < 0 || firstLf >= end) return "bad-start-line";
  const lineEnd = firstLf > start && buf[firstLf - 1] === CR ? firstLf - 1 : firstLf;
  if (classifyStartLine(buf, start, firstLf + 1) !== "yes") return "bad-start-line";
  const text = buf.toString("latin1", start, end);

  let kind: ParsedHead["kind"];
  let method: string | null = null;
  let target: string | null = null;
  let version: string;
  let status: number | null = null;
  let reason: string | null = null;
  if (classifyStatusLine(buf, start, firstLf + 1) === "yes") {
    kind = "response";
    version = versionString(buf, start);
    status = (buf[start + 9]! - 0x30) * 100 + (buf[start + 10]! - 0x30) * 10 + (buf[start + 11]! - 0x30);
    reason = lineEnd > start + 13 ? text.slice(13, lineEnd - start) : "";
  } else {
    kind = "request";
    const methodEnd = buf.indexOf(SP, start);
    const targetEnd = buf.indexOf(SP, methodEnd + 1);
    method = knownMethod(buf, start, methodEnd) ?? text.slice(0, methodEnd - start);
    target = text.slice(methodEnd + 1 - start, targetEnd - start);
    version = versionString(buf, targetEnd + 1);
  }

  const fields: HeaderField[] = [];
  let pos = firstLf + 1;
  while (pos < end) {
    const lf = buf.indexOf(LF, pos);
    if (lf < 0 || lf >= end) return "bad-header";
    const e = lf > pos && buf[lf - 1] === CR ? lf - 1 : lf;
    if (e === pos) break; // the empty line ending the block
    const first = buf[pos]!;
    if (first === SP || first === HT) {
      // obs-fold: a continuation of the previous field's value
      const previous = fields[fields.length - 1];
      if (previous === undefined) return "bad-header";
      let vs = pos;
      let ve = e;
      while (vs < ve && (buf[vs] === SP || buf[vs] === HT)) vs++;
      while (ve > vs && (buf[ve - 1] === SP || buf[ve - 1] === HT)) ve--;
      if (ve > vs) {
        const more = text.slice(vs - start, ve - start);
        previous.value = previous.value === "" ? more : `${previous.value} ${more}`;
      }
    } else {
      let colon = pos;
      while (colon < e && TCHAR[buf[colon]!] === 1) colon++;
      if (colon === pos || colon >= e || buf[colon] !== COLON) return "bad-header";
      let vs = colon + 1;
      let ve = e;
      while (vs < ve && (buf[vs] === SP || buf[vs] === HT)) vs++;
      while (ve > vs && (buf[ve - 1] === SP || buf[ve - 1] === HT)) ve--;
      fields.push({
        name: internName(buf, text, start, pos, colon),
        value: ve > vs ? text.slice(vs - start, ve - start) : "",
      });
    }
    pos = lf + 1;
  }

  const framing = framingOf(fields);
  if (framing === null) return "bad-header";
  return {
    kind,
    method,
    target,
    version,
    status,
    reason,
    fields,
    headerBytes: end - start,
    framing: framing.framing,
    contentLength: framing.contentLength,
  };
}

/** Slots of the header name table; a power of two. */
const NAME_SLOTS = 1024;
const internedNames: (string | undefined)[] = new Array<string | undefined>(NAME_SLOTS).fill(undefined);

/**
 * The header name buf[from, to) as a string, the same string object each time
 * the name recurs (a workload uses few names): no allocation, and the policy's
 * lookups by name hit a string whose hash is already computed. A slot holds
 * the last name that hashed to it; a collision only costs a fresh slice.
 */
function internName(buf: Buffer, text: string, start: number, from: number, to: number): string {
  const n = to - from;
  const slot = (n * 31 + buf[from]! * 7 + buf[to - 1]! * 3 + buf[from + (n >> 1)]!) & (NAME_SLOTS - 1);
  const cached = internedNames[slot];
  if (cached !== undefined && cached.length === n) {
    let i = 0;
    while (i < n && cached.charCodeAt(i) === buf[from + i]) i++;
    if (i === n) return cached;
  }
  const name = text.slice(from - start, to - start);
  internedNames[slot] = name;
  return name;
}

/** The common methods as constant strings (no allocation); null for others. */
function knownMethod(buf: Buffer, start: number, end: number): string | null {
  const n = end - start;
  const b = buf[start];
  if (n === 3 && b === 0x47 && buf[start + 1] === 0x45 && buf[start + 2] === 0x54) return "GET";
  if (n === 4 && b === 0x50 && buf[start + 1] === 0x4f && buf[start + 2] === 0x53 && buf[start + 3] === 0x54) return "POST";
  return null;
}
