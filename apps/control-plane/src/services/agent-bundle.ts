/**
 * The agent bundles this control plane serves to `install.sh`: `latest.json` and the
 * versioned tarballs that `scripts/build-agent-bundle.mjs` writes into the bundle directory
 * (env HDRCAP_BUNDLE_DIR, default <repo>/dist/bundles). Both are read on each request, so a
 * newly built bundle is served without a restart.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { z } from "zod";
import { repositoryRoot } from "./install-script.ts";

export const bundleManifestSchema = z.object({
  version: z.string().regex(/^[A-Za-z0-9._-]+$/),
  file: z.string().regex(/^agent-[A-Za-z0-9._-]+-linux-x64\.tar\.gz$/),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  size: z.number().int().nonnegative(),
  node: z.string().optional(),
});
export type BundleManifest = z.infer<typeof bundleManifestSchema>;

/** Bundle file names are the only thing a client chooses; anything else is not found. */
const BUNDLE_FILE_RE = /^agent-[A-Za-z0-9._-]+-linux-x64\.tar\.gz$/;

export function bundleDirectory(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.HDRCAP_BUNDLE_DIR || join(repositoryRoot(), "dist/bundles"));
}

export class BundleUnavailableError extends Error {}

/** The current bundle, or a BundleUnavailableError saying how to build one. */
export function latestBundle(dir = bundleDirectory()): BundleManifest {
  const path = join(dir, "latest.json");
  if (!existsSync(path)) throw new BundleUnavailableError(`no agent bundle in ${dir}: build one with scripts/build-agent-bundle.mjs (or set HDRCAP_BUNDLE_DIR)`);
  const parsed = bundleManifestSchema.safeParse(JSON.parse(readFileSync(path, "utf8")));
  if (!parsed.success) throw new BundleUnavailableError(`${path} is not a bundle manifest; rebuild it with scripts/build-agent-bundle.mjs`);
  if (!existsSync(join(dir, parsed.data.file))) throw new BundleUnavailableError(`${parsed.data.file} named by ${path} is missing; rebuild the bundle`);
  return parsed.data;
}

/** The path of a bundle tarball by its file name, or null (unknown name, or not there). */
export function bundleFile(name: string, dir = bundleDirectory()): { path: string; size: number } | null {
  if (!BUNDLE_FILE_RE.test(name)) return null;
  const path = join(dir, name);
  try {
    const st = statSync(path);
    return st.isFile() ? { path, size: st.size } : null;
  } catch {
    return null;
  }
}
