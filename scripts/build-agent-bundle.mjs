#!/usr/bin/env node
// Builds the self-contained agent bundle that the control plane serves to `install.sh`:
//
//   hdrcap-agent-<version>/
//     VERSION                 the bundle version
//     bin/hdrcap-agent        sh wrapper: bundled node + agent/main.js (+ a pinned CA, if any)
//     node/bin/node           the Node.js runtime of the build machine (glibc ≥ 2.28, x86-64)
//     agent/main.js           apps/agent/dist (esbuild bundle, chunk-*.js loaded on demand) and agent/build/*.bpf.o, libhdrcap_shim.so
//     node_modules/           only the third-party packages main.js imports, and their dependencies
//
// into <out>/agent-<version>-linux-x64.tar.gz and <out>/latest.json ({ version, file, sha256, size }).
// The version is the agent's version plus a hash of the bundle's content, so any change to
// the agent, its packages or the runtime yields a new version and `install.sh` upgrades to it.
// The tarball is reproducible (sorted, fixed mtime and owner, gzip -n). When latest.json already
// names this content, nothing is rebuilt, so running this from a build or test is cheap.
//
// Usage: node scripts/build-agent-bundle.mjs [--out <dir>] [--node <path to node binary>] [--keep <n>]
//   --out   default $HDRCAP_BUNDLE_DIR, else <repo>/dist/bundles
//   --node  default $HDRCAP_BUNDLE_NODE, else the node running this script
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { builtinModules } from "node:module";
import {
  chmodSync,
  copyFileSync,
  cpSync,
  createReadStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), "..");
const AGENT_DIST = join(ROOT, "apps/agent/dist");
const { values: args } = parseArgs({
  options: { out: { type: "string" }, node: { type: "string" }, keep: { type: "string", default: "3" }, quiet: { type: "boolean" } },
});
const outDir = resolve(args.out ?? process.env.HDRCAP_BUNDLE_DIR ?? join(ROOT, "dist/bundles"));
const nodeBinary = resolve(args.node ?? process.env.HDRCAP_BUNDLE_NODE ?? process.execPath);
const keep = Math.max(1, Number(args.keep));
const log = (msg) => args.quiet || process.stderr.write(`build-agent-bundle: ${msg}\n`);
const fail = (msg) => {
  process.stderr.write(`build-agent-bundle: ${msg}\n`);
  process.exit(1);
};

const started = Date.now();
for (const f of ["main.js", "build/http_sock.bpf.o", "build/tc_capture.bpf.o", "build/libhdrcap_shim.so"]) {
  if (!existsSync(join(AGENT_DIST, f))) fail(`apps/agent/dist/${f} is missing: run 'npm run build' first`);
}
if (process.platform !== "linux" || process.arch !== "x64") fail(`bundles are linux-x64 and must be built there (this is ${process.platform}-${process.arch})`);
if (!existsSync(nodeBinary)) fail(`node binary ${nodeBinary} not found`);

/** Bare package names a bundle file imports at run time (the esbuild bundle keeps third-party packages external). */
function externalImports(source) {
  const builtins = new Set(builtinModules);
  const names = new Set();
  const re = /\bimport\s*(?:[\w${}\s,*]+?\s*from\s*)?["']([^"'./][^"']*)["']|\bimport\(\s*["']([^"'./][^"']*)["']\s*\)|\brequire\(\s*["']([^"'./][^"']*)["']\s*\)/g;
  for (const m of source.matchAll(re)) {
    const spec = m[1] ?? m[2] ?? m[3];
    if (spec.startsWith("node:") || builtins.has(spec.split("/")[0])) continue;
    const parts = spec.split("/");
    names.add(spec.startsWith("@") ? `${parts[0]}/${parts[1]}` : parts[0]);
  }
  return [...names].sort();
}

/**
 * main.js and the chunks it loads, statically or on demand (build-app.mjs --split), followed from main.js:
 * a turbo cache restore can leave another build's chunks beside them.
 */
function agentScripts() {
  const seen = new Set();
  const queue = ["main.js"];
  while (queue.length > 0) {
    const f = queue.shift();
    if (seen.has(f)) continue;
    if (!existsSync(join(AGENT_DIST, f))) fail(`apps/agent/dist/${f} is missing: run 'npm run build' again`);
    seen.add(f);
    for (const m of readFileSync(join(AGENT_DIST, f), "utf8").matchAll(/["']\.\/(chunk-[\w-]+\.js)["']/g)) queue.push(m[1]);
  }
  return [...seen].sort();
}

/** Node's lookup: <dir>/node_modules/<name>, walking up from `fromDir` to the repository root. */
function findPackage(name, fromDir) {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const candidate = join(dir, "node_modules", name);
    if (existsSync(join(candidate, "package.json"))) return candidate;
    if (dir === ROOT || dir === dirname(dir)) return null;
  }
}

/** The production dependency closure of `roots`, as package directories relative to the repository root. */
function dependencyClosure(roots) {
  const seen = new Map();
  const queue = roots.map((name) => ({ name, from: AGENT_DIST, optional: false }));
  while (queue.length > 0) {
    const { name, from, optional } = queue.shift();
    const dir = findPackage(name, from);
    if (!dir) {
      if (optional) continue;
      fail(`package ${name} (needed from ${relative(ROOT, from) || "."}) is not installed: run 'npm install'`);
    }
    const rel = relative(ROOT, dir);
    if (seen.has(rel)) continue;
    const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
    if (rel.split("/").includes("@hdrcap")) fail(`${name} is a workspace package; it must be bundled into main.js, not shipped`);
    seen.set(rel, pkg.version);
    for (const dep of Object.keys(pkg.dependencies ?? {})) queue.push({ name: dep, from: dir, optional: false });
    for (const dep of Object.keys(pkg.optionalDependencies ?? {})) queue.push({ name: dep, from: dir, optional: true });
    // Peer dependencies resolve from the consumer; ship them when the tree has them.
    for (const dep of Object.keys(pkg.peerDependencies ?? {})) queue.push({ name: dep, from: dir, optional: true });
  }
  return [...seen.keys()].sort();
}

/** Files a running agent never reads: type declarations, source maps of dependencies, docs, other platforms' koffi builds. */
function shipFile(src) {
  const rel = relative(ROOT, src);
  if (/\.(d\.ts|d\.mts|d\.cts|map|md)$/.test(rel) && !/LICENSE/i.test(rel)) return false;
  const koffi = /(^|\/)node_modules\/koffi\/(.*)$/.exec(rel);
  if (koffi) {
    const inner = koffi[2];
    if (/^(src|vendor|doc)(\/|$)/.test(inner)) return false;
    if (/^build\/koffi\/[^/]+/.test(inner) && !/^build\/koffi\/linux_x64(\/|$)/.test(inner)) return false;
  }
  return true;
}

function copyPackage(relDir, stage) {
  const src = join(ROOT, relDir);
  // Nested node_modules are copied only for the packages the closure reached.
  cpSync(src, join(stage, relDir), {
    recursive: true,
    dereference: true,
    filter: (p) => (p === src || relative(src, p).split("/")[0] !== "node_modules") && shipFile(p),
  });
}

function listFiles(dir, base = dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listFiles(p, base));
    else out.push(relative(base, p));
  }
  return out.sort();
}

function contentHash(dir) {
  const h = createHash("sha256");
  for (const rel of listFiles(dir)) {
    const st = statSync(join(dir, rel));
    h.update(`${rel}\0${st.mode & 0o111 ? "x" : "-"}\0${st.size}\0`);
    h.update(readFileSync(join(dir, rel)));
  }
  return h.digest("hex");
}

async function sha256File(path) {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path)) h.update(chunk);
  return h.digest("hex");
}

const agentVersion = /AGENT_VERSION\s*=\s*"([^"]+)"/.exec(readFileSync(join(ROOT, "apps/agent/src/enrollment/host-facts.ts"), "utf8"))?.[1];
if (!agentVersion) fail("cannot read AGENT_VERSION from apps/agent/src/enrollment/host-facts.ts");

mkdirSync(outDir, { recursive: true });
const work = mkdtempSync(join(outDir, ".staging-"));
try {
  const stage = join(work, "bundle");
  mkdirSync(join(stage, "agent/build"), { recursive: true });
  const scripts = agentScripts();
  for (const f of scripts) {
    copyFileSync(join(AGENT_DIST, f), join(stage, "agent", f));
    if (existsSync(join(AGENT_DIST, `${f}.map`))) copyFileSync(join(AGENT_DIST, `${f}.map`), join(stage, `agent/${f}.map`));
  }
  for (const f of ["http_sock.bpf.o", "tc_capture.bpf.o", "libhdrcap_shim.so"]) copyFileSync(join(AGENT_DIST, "build", f), join(stage, "agent/build", f));
  // main.js is ESM; the bundle has no package.json above it otherwise.
  writeFileSync(join(stage, "agent/package.json"), JSON.stringify({ name: "hdrcap-agent-bundle", private: true, type: "module" }, null, 2) + "\n");

  const imports = [...new Set(scripts.flatMap((f) => externalImports(readFileSync(join(AGENT_DIST, f), "utf8"))))].sort();
  const packages = dependencyClosure(imports);
  for (const rel of packages) copyPackage(rel, stage);

  mkdirSync(join(stage, "node/bin"), { recursive: true });
  copyFileSync(nodeBinary, join(stage, "node/bin/node"));
  chmodSync(join(stage, "node/bin/node"), 0o755);
  mkdirSync(join(stage, "bin"), { recursive: true });
  copyFileSync(join(ROOT, "deploy/bundle/hdrcap-agent"), join(stage, "bin/hdrcap-agent"));
  chmodSync(join(stage, "bin/hdrcap-agent"), 0o755);
  const nodeVersion = execFileSync(join(stage, "node/bin/node"), ["--version"], { encoding: "utf8" }).trim();

  const version = `${agentVersion}-${contentHash(stage).slice(0, 10)}`;
  const file = `agent-${version}-linux-x64.tar.gz`;
  const latestPath = join(outDir, "latest.json");
  const previous = existsSync(latestPath) ? JSON.parse(readFileSync(latestPath, "utf8")) : null;
  if (previous?.version === version && existsSync(join(outDir, previous.file))) {
    log(`${previous.file} is up to date (${((Date.now() - started) / 1000).toFixed(1)} s)`);
    process.stdout.write(`${join(outDir, previous.file)}\n`);
    process.exit(0);
  }
  writeFileSync(join(stage, "VERSION"), `${version}\n`);
  const top = `hdrcap-agent-${version}`;
  renameSync(stage, join(work, top));

  const tarball = join(work, file);
  const gzip = existsSync("/usr/bin/pigz") ? "pigz -n" : "gzip -n";
  execFileSync(
    "sh",
    ["-c", `tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$1" -cf - "$2" | ${gzip} > "$3"`, "sh", work, top, tarball],
    { stdio: ["ignore", "inherit", "inherit"] },
  );
  const sha256 = await sha256File(tarball);
  const size = statSync(tarball).size;
  renameSync(tarball, join(outDir, file));
  const latest = { version, file, sha256, size, node: nodeVersion, packages: packages.map((p) => p.replace(/^.*node_modules\//, "")), builtAt: new Date().toISOString() };
  writeFileSync(`${latestPath}.tmp`, JSON.stringify(latest, null, 2) + "\n");
  renameSync(`${latestPath}.tmp`, latestPath);

  // Keep the newest few bundles so hosts mid-download of the previous one still finish.
  const bundles = readdirSync(outDir)
    .filter((f) => /^agent-.+-linux-x64\.tar\.gz$/.test(f))
    .map((f) => ({ f, t: statSync(join(outDir, f)).mtimeMs }))
    .sort((a, b) => b.t - a.t);
  for (const { f } of bundles.slice(keep)) if (f !== file) rmSync(join(outDir, f), { force: true });

  log(`${file}: ${(size / 1e6).toFixed(1)} MB, ${packages.length} packages, node ${nodeVersion}, sha256 ${sha256.slice(0, 16)}… (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  process.stdout.write(`${join(outDir, file)}\n`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
