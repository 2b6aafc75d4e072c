#!/usr/bin/env node
// Bundles an app's TypeScript entry (and the workspace packages it imports) into
// one ESM file. Third-party packages stay external and load from node_modules.
// Usage: node scripts/build-app.mjs <entry.ts> <out.js>   (run from the app folder)
import { build } from "esbuild";
import { chmodSync } from "node:fs";

const [entry, outfile] = process.argv.slice(2);
if (!entry || !outfile) {
  console.error("usage: build-app.mjs <entry.ts> <out.js>");
  process.exit(2);
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
  outfile,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  sourcemap: "linked",
  plugins: [externalThirdParty],
  logLevel: "warning",
});
chmodSync(outfile, 0o755);
