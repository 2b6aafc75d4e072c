/**
 * Fleet install: `GET /install.sh` (the installer, templated with this control plane's URL),
 * `GET /bundles/latest.json` and `GET /bundles/<file>` (the agent bundle), all without auth,
 * and `POST /v1/agents/self/deregister`, authenticated by the agent's own key. Mounted before
 * the API-key middleware.
 */
import { createReadStream } from "node:fs";
import { Readable } from "node:stream";
import { ApiError } from "@hdrcap/api";
import { getConnInfo } from "@hono/node-server/conninfo";
import { bundleFile, latestBundle, BundleUnavailableError } from "../../services/agent-bundle.ts";
import { deregisterAgent } from "../../services/agent-deregistration.ts";
import { publicUrl, renderInstallScript } from "../../services/install-script.ts";
import { createRouter } from "../openapi.ts";
import * as routes from "./install.routes.ts";

function peerAddress(c: Parameters<typeof getConnInfo>[0]): string | null {
  try {
    return getConnInfo(c).remote.address ?? null;
  } catch {
    return null; // not served by node (tests)
  }
}

export const installRouter = createRouter();

installRouter.get("/install.sh", (c) => {
  const script = renderInstallScript(publicUrl(c.req.url));
  return c.body(script, 200, { "content-type": "text/x-shellscript; charset=utf-8", "cache-control": "no-store" });
});

installRouter.openapi(routes.latestBundle, (c) => {
  try {
    const m = latestBundle();
    return c.json({ version: m.version, file: m.file, sha256: m.sha256, size: m.size, ...(m.node ? { node: m.node } : {}) }, 200, { "cache-control": "no-store" });
  } catch (err) {
    if (err instanceof BundleUnavailableError) throw new ApiError("NOT_FOUND", err.message);
    throw err;
  }
});

installRouter.get("/bundles/:file", (c) => {
  const found = bundleFile(c.req.param("file"));
  if (!found) throw new ApiError("NOT_FOUND", `no agent bundle ${c.req.param("file")}; see /bundles/latest.json`);
  const body = Readable.toWeb(createReadStream(found.path)) as ReadableStream;
  return c.body(body, 200, {
    "content-type": "application/gzip",
    "content-length": String(found.size),
    // Names are versioned by content: a file never changes.
    "cache-control": "public, max-age=31536000, immutable",
  });
});

installRouter.openapi(routes.deregisterSelf, async (c) => {
  const deps = c.get("deps");
  const { agentId } = await deregisterAgent(deps.db, c.req.valid("json"), peerAddress(c));
  c.get("logger").info({ agentId }, "agent deregistered itself");
  // After the commit; a failure is logged and retried by the periodic push, not the agent's problem.
  await deps.credentialRevocations?.push("deregistration");
  return c.json({ agentId, deregistered: true as const }, 200);
});
