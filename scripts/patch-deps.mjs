#!/usr/bin/env node
// Applies hdrcap's small, idempotent fixes to installed dependencies (run by
// scripts/install-deps.sh after `npm ci`). Each fix names the upstream issue; drop
// it once a release contains the fix.
//
// postgres@3.4.9 (porsager/postgres#1066, #1154, #1208): a small write is deferred
// with setImmediate; when the connection closes first (Postgres restarted, backend
// killed), the deferred write dereferences a null socket and throws from the
// timer, which crashes the process, and teardown leaves the timer non-null so the
// pooled connection never writes again. The fix skips the write when the socket is
// gone and resets the write state on teardown.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const MARK = "/* hdrcap: null-socket write guard */";
let patched = 0;

for (const flavour of ["src", "cjs/src", "cf/src"]) {
  const file = join(root, "node_modules/postgres", flavour, "connection.js");
  if (!existsSync(file)) continue;
  let text = readFileSync(file, "utf8");
  if (text.includes(MARK)) continue;
  const before = text;
  text = text.replace(/function nextWrite\(fn\) \{\n/, (m) => `${m}    ${MARK} if (socket === null) { chunk = nextWriteTimer = null; return false }\n`);
  text = text.replaceAll(/\n(\s+)clearImmediate\(nextWriteTimer\)\n/g, (_m, indent) => `\n${indent}clearImmediate(nextWriteTimer)\n${indent}chunk = nextWriteTimer = null\n`);
  if (text === before || !text.includes(MARK)) {
    console.error(`patch-deps: ${file} does not look like postgres 3.4.x any more; review scripts/patch-deps.mjs`);
    process.exit(1);
  }
  writeFileSync(file, text);
  patched++;
}
if (patched) console.error(`patch-deps: guarded postgres.js writes after close (${patched} files)`);
