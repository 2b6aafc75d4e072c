/** A small typed HTTP client of the REST API for the CLI. */
import type { ErrorBody } from "@hdrcap/api";
import type { CliConfig } from "./config.ts";

export class ApiClientError extends Error {
  constructor(
    readonly status: number,
    readonly body: ErrorBody | undefined,
    message: string,
  ) {
    super(message);
  }
}

export function createApiClient(login: CliConfig) {
  async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(new URL(path, login.url), {
        method,
        headers: { authorization: `Bearer ${login.apiKey}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new Error(`cannot reach the control plane at ${login.url}: ${err instanceof Error ? err.message : String(err)}`);
    }
    const text = await res.text();
    const json = text ? (JSON.parse(text) as unknown) : undefined;
    if (!res.ok) {
      const errBody = json as ErrorBody | undefined;
      const issues = errBody?.error?.issues?.map((i) => `\n  ${i.path}: ${i.message}`).join("") ?? "";
      throw new ApiClientError(res.status, errBody, `${res.status} ${errBody?.error?.code ?? ""}: ${errBody?.error?.message ?? text}${issues}`);
    }
    return json as T;
  }
  return {
    get: <T>(path: string) => call<T>("GET", path),
    post: <T>(path: string, body: unknown) => call<T>("POST", path, body),
    delete: <T>(path: string) => call<T>("DELETE", path),
  };
}
