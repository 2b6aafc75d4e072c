/**
 * A private nginx for benchmarks: own prefix in a temp dir, one worker, a
 * 1 KiB static page served on two loopback ports (without and with an access
 * log of six request headers) and stub_status on a third port, whose request
 * counter is the ground truth of requests served.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { stopChild, sleep } from "./child.ts";
import { freeLoopbackPorts } from "./ports.ts";

export interface BenchNginx {
  /** Port without access log (the baseline, and the one captured). */
  plainPort: number;
  /** Port with `access_log` of six request headers. */
  accessLogPort: number;
  statusPort: number;
  /** Path of the static page on both ports. */
  pagePath: string;
  version: string;
  masterPid: number;
  workerPids(): number[];
  /** Requests nginx has handled so far (stub_status), including this query. */
  requestsHandled(): Promise<number>;
  stop(): Promise<void>;
}

/** 1 KiB of plausible HTML. */
function page(): string {
  const head = "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>hdrcap bench</title></head><body>\n";
  const tail = "</body></html>\n";
  let body = "";
  for (let i = 0; body.length < 1024 - head.length - tail.length - 40; i++)
    body += `<p>Paragraph ${i}: the quick brown fox jumps.</p>\n`;
  return (head + body).padEnd(1024 - tail.length, " ") + tail;
}

export async function startNginx(dir: string): Promise<BenchNginx> {
  const [plainPort, accessLogPort, statusPort] = (await freeLoopbackPorts(3)) as [number, number, number];
  for (const d of ["html", "logs", "tmp"]) mkdirSync(path.join(dir, d), { recursive: true });
  writeFileSync(path.join(dir, "html", "index.html"), page());
  const conf = `
worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/logs/error.log warn;
events { worker_connections 4096; }
http {
  default_type text/html;
  sendfile on;
  # Without it every request also costs openat + fstat + close.
  open_file_cache max=64;
  keepalive_timeout 65;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  log_format six_headers '$remote_addr [$time_local] "$request" $status $body_bytes_sent '
                         '"$http_host" "$http_user_agent" "$http_accept" "$http_accept_language" '
                         '"$http_accept_encoding" "$http_x_request_id"';
  access_log off;
  server {
    listen 127.0.0.1:${plainPort};
    root ${dir}/html;
  }
  server {
    listen 127.0.0.1:${accessLogPort};
    root ${dir}/html;
    access_log ${dir}/logs/access.log six_headers;
  }
  server {
    listen 127.0.0.1:${statusPort};
    location = /status { stub_status; }
  }
}
`;
  const confPath = path.join(dir, "nginx.conf");
  writeFileSync(confPath, conf);
  const versionOut = await new Promise<string>((resolve) => {
    const v = spawn("nginx", ["-v"], { stdio: ["ignore", "ignore", "pipe"] });
    let s = "";
    v.stderr.on("data", (b: Buffer) => (s += b.toString()));
    v.on("exit", () => resolve(s.trim()));
  });
  const master: ChildProcess = spawn("nginx", ["-p", dir, "-c", confPath], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  master.stderr!.on("data", (b: Buffer) => (stderr += b.toString()));
  const masterPid = master.pid!;

  const workerPids = () => {
    try {
      return readFileSync(`/proc/${masterPid}/task/${masterPid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return [];
    }
  };
  const requestsHandled = async () => {
    const res = await fetch(`http://127.0.0.1:${statusPort}/status`);
    const text = await res.text();
    // "Active connections: N \nserver accepts handled requests\n A H R \n..."
    const m = /\n\s*(\d+)\s+(\d+)\s+(\d+)\s*\n/.exec(text);
    if (!m) throw new Error(`unexpected stub_status output: ${text}`);
    return Number(m[3]);
  };

  for (let i = 0; ; i++) {
    if (master.exitCode !== null) throw new Error(`nginx exited: ${stderr.trim()}`);
    try {
      await requestsHandled();
      if (workerPids().length > 0) break;
    } catch {
      /* not listening yet */
    }
    if (i > 100) throw new Error(`nginx did not come up: ${stderr.trim()}`);
    await sleep(50);
  }

  return {
    plainPort,
    accessLogPort,
    statusPort,
    pagePath: "/index.html",
    version: versionOut.replace(/^nginx version:\s*/, ""),
    masterPid,
    workerPids,
    requestsHandled,
    stop: () => stopChild(master, "SIGQUIT"),
  };
}
