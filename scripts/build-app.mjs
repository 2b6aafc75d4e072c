#!/usr/bin/env node
// Bundles an app's TypeScript entry (and the workspace packages it imports) into
// one ESM file. Third-party packages stay external and load from node_modules.
// Usage: node scripts/build-app.mjs [--split] <entry.ts> <out.js>   (run from the app folder)
//   --split  code splitting: every dynamic import() of app code becomes a chunk (<out dir>/chunk-*.js)
//            loaded when first used, so the third-party packages only it imports are not evaluated at
//            start-up (in one file, esbuild hoists all of them to the top). Used by the agent.
import { build } from "esbuild";
import { chmodSync, existsSync, readdirSync, rmSync } from "node:fs";
import { basename, dirname, extname, join } from "node:path";

const split = process.argv.includes("--split");
const [entry, outfile] = process.argv.slice(2).filter((a) => a !== "--split");
if (!entry || !outfile) {
  console.error("usage: build-app.mjs [--split] <entry.ts> <out.js>");
  process.exit(2);
}
const outdir = dirname(outfile);
if (split && existsSync(outdir)) {
  // Chunk names carry a content hash: drop the previous build's so the folder holds only live ones.
  for (const f of readdirSync(outdir, { withFileTypes: true }).filter((e) => e.isFile() && e.name.startsWith("chunk-"))) rmSync(join(outdir, f.name));
}

const externalThirdParty = {
  name: "external-third-party",
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.path.startsWith("@hdrcap/")) return undefined;
      return { path: args.path, external: true };
    });
  },
};

await build({
  entryPoints: [entry],
  ...(split
    ? { outdir, splitting: true, entryNames: basename(outfile, extname(outfile)), chunkNames: "chunk-[hash]" }
    : { outfile }),
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  sourcemap: "linked",
  plugins: [externalThirdParty],
  logLevel: "warning",
});
chmodSync(outfile, 0o755);
