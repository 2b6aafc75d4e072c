/**
 * Thin koffi bindings for libbpf (libbpf.so.1) and the hdrcap shim
 * (bpf/build/libhdrcap_shim.so): open/load a BPF object, attach its
 * programs as FD-owned links (they die with the process), map operations,
 * ring-buffer draining in bulk, per-CPU counter sums.
 *
 * Failures become LibbpfError with the errno name and what it means here.
 * libbpf's log goes to a logger callback; its "raise ulimit -l" hint is
 * dropped because memory is memcg-accounted on supported kernels and the
 * real cause of EPERM is a missing capability.
 */
import koffi from "koffi";
import type { IKoffiRegisteredCallback } from "koffi";
import { closeSync, openSync, readFileSync } from "node:fs";
import { shimLibraryPath } from "@hdrcap/bpf/paths";

export type LibbpfLogLevel = "warn" | "info" | "debug";
export type LibbpfLogger = (level: LibbpfLogLevel, message: string) => void;

const errnoNames = new Map<number, string>(
  Object.entries(koffi.os.errno).map(([name, value]) => [value, name]),
);

export function errnoName(errno: number): string {
  return errnoNames.get(Math.abs(errno)) ?? `errno ${Math.abs(errno)}`;
}

const CAP_NET_ADMIN = 12;
const CAP_SYS_ADMIN = 21;
const CAP_PERFMON = 38;
const CAP_BPF = 39;

/** Names of the capabilities BPF tracing needs that this process lacks. */
export function missingBpfCapabilities(): string[] {
  let eff = 0n;
  try {
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync("/proc/self/status", "utf8"));
    if (m?.[1]) eff = BigInt(`0x${m[1]}`);
  } catch {
    return ["(unknown: /proc/self/status unreadable)"];
  }
  const has = (bit: number) => (eff >> BigInt(bit)) & 1n;
  if (has(CAP_SYS_ADMIN)) return [];
  const missing: string[] = [];
  if (!has(CAP_BPF)) missing.push("CAP_BPF");
  if (!has(CAP_PERFMON)) missing.push("CAP_PERFMON");
  void CAP_NET_ADMIN; // only needed for TC/XDP programs, not these tracepoints
  return missing;
}

export class LibbpfError extends Error {
  readonly errno: number;
  readonly code: string;
  readonly op: string;

  constructor(op: string, errno: number, detail?: string) {
    const e = Math.abs(errno);
    const code = errnoName(e);
    super(`${op}: ${code} (${explain(e, op)})${detail ? `\n${detail}` : ""}`);
    this.name = "LibbpfError";
    this.errno = e;
    this.code = code;
    this.op = op;
  }
}

function explain(errno: number, op: string): string {
  switch (errnoName(errno)) {
    case "EPERM": {
      const missing = missingBpfCapabilities();
      return missing.length > 0
        ? `operation not permitted: this process lacks ${missing.join(" and ")} (run as root or grant them)`
        : "operation not permitted although CAP_BPF/CAP_PERFMON are present: a LSM, seccomp or kernel.unprivileged_bpf_disabled policy refused it";
    }
    case "EACCES":
      return op.includes("load")
        ? "the verifier rejected a program (see the verifier log above)"
        : "permission denied";
    case "ENOENT":
      return op.includes("attach")
        ? "hook not found: is tracefs mounted at /sys/kernel/tracing and does the tracepoint exist?"
        : "not found";
    case "E2BIG":
      return "too big: a map value or program exceeds a kernel limit";
    case "EINVAL":
      return "invalid argument (kernel too old for a feature, or a bad map/program definition)";
    case "ENOSPC":
      return "no space";
    case "ENOMEM":
      return "out of memory (memcg limit?)";
    default:
      return "see errno";
  }
}

// ---- library loading -------------------------------------------------------

koffi.opaque("bpf_object");
koffi.opaque("bpf_program");
koffi.opaque("bpf_map");
koffi.opaque("bpf_link");
koffi.opaque("hdrcap_rb");
const logProto = koffi.proto("void hdrcap_log_fn(int level, const char *msg)");

function bind(libPath: string) {
  const lib = koffi.load(libPath);
  return {
    openFile: lib.func("bpf_object *bpf_object__open_file(const char *path, void *opts)"),
    load: lib.func("int bpf_object__load(bpf_object *obj)"),
    close: lib.func("void bpf_object__close(bpf_object *obj)"),
    findMap: lib.func("bpf_map *bpf_object__find_map_by_name(bpf_object *obj, const char *name)"),
    nextProgram: lib.func("bpf_program *bpf_object__next_program(bpf_object *obj, bpf_program *prev)"),
    programName: lib.func("const char *bpf_program__name(bpf_program *prog)"),
    programSection: lib.func("const char *bpf_program__section_name(bpf_program *prog)"),
    programFd: lib.func("int bpf_program__fd(bpf_program *prog)"),
    programSetAutoload: lib.func("int bpf_program__set_autoload(bpf_program *prog, bool autoload)"),
    attach: lib.func("bpf_link *bpf_program__attach(bpf_program *prog)"),
    linkDestroy: lib.func("int bpf_link__destroy(bpf_link *link)"),
    mapFd: lib.func("int bpf_map__fd(bpf_map *map)"),
    mapSetMaxEntries: lib.func("int bpf_map__set_max_entries(bpf_map *map, uint32_t max_entries)"),
    mapUpdate: lib.func("int bpf_map_update_elem(int fd, const void *key, const void *value, uint64_t flags)"),
    mapLookup: lib.func("int bpf_map_lookup_elem(int fd, const void *key, _Out_ void *value)"),
    mapDelete: lib.func("int bpf_map_delete_elem(int fd, const void *key)"),
    mapNextKey: lib.func("int bpf_map_get_next_key(int fd, const void *key, _Out_ void *next_key)"),
    numPossibleCpus: lib.func("int libbpf_num_possible_cpus(void)"),
    // attach_type is an int: the system's libbpf headers may predate BPF_TCX_*.
    linkCreate: lib.func("int bpf_link_create(int prog_fd, int target_fd, int attach_type, void *opts)"),
  };
}

function bindLibc() {
  const lib = koffi.load("libc.so.6");
  return {
    close: lib.func("int close(int fd)"),
    ifNameToIndex: lib.func("unsigned int if_nametoindex(const char *ifname)"),
    setns: lib.func("int setns(int fd, int nstype)"),
  };
}

function bindShim(libPath: string) {
  const lib = koffi.load(libPath);
  return {
    rbOpen: lib.func("hdrcap_rb *hdrcap_rb_open(int map_fd)"),
    rbClose: lib.func("void hdrcap_rb_close(hdrcap_rb *rb)"),
    rbPending: lib.func("uint64_t hdrcap_rb_pending(hdrcap_rb *rb)"),
    rbDrain: lib.func("int64_t hdrcap_rb_drain(hdrcap_rb *rb, _Out_ uint8_t *out, uint64_t out_len, _Out_ uint32_t *records)"),
    percpuSum: lib.func("int hdrcap_percpu_sum(int map_fd, uint32_t count, _Out_ uint64_t *out)"),
    setLog: lib.func("void hdrcap_set_log(hdrcap_log_fn *fn)"),
    bootToWallOffsetNs: lib.func("int64_t hdrcap_boot_to_wall_offset_ns(void)"),
    progId: lib.func("uint32_t hdrcap_prog_id(int prog_fd)"),
  };
}

let libbpf: ReturnType<typeof bind> | undefined;
let libc: ReturnType<typeof bindLibc> | undefined;

function libcLib(): ReturnType<typeof bindLibc> {
  libc ??= bindLibc();
  return libc;
}
let shim: ReturnType<typeof bindShim> | undefined;

function lib(): ReturnType<typeof bind> {
  if (!libbpf) {
    try {
      libbpf = bind("libbpf.so.1");
    } catch (err) {
      throw new Error(`cannot load libbpf.so.1 (install libbpf1 / libbpf-dev): ${(err as Error).message}`);
    }
  }
  return libbpf;
}

function shimLib(): ReturnType<typeof bindShim> {
  if (!shim) {
    lib(); // the shim links against it
    try {
      shim = bindShim(shimLibraryPath);
    } catch (err) {
      throw new Error(
        `cannot load ${shimLibraryPath} (run 'npm run build' in bpf/ or set HDRCAP_BPF_DIR): ${(err as Error).message}`,
      );
    }
    installLogRouter();
  }
  return shim;
}

// ---- logging ---------------------------------------------------------------

const LEVELS: LibbpfLogLevel[] = ["warn", "info", "debug"];
let logger: LibbpfLogger | undefined;
/** Recent libbpf lines, attached to errors (the verifier log lives here). */
const recentLog: string[] = [];
let registeredLogCb: IKoffiRegisteredCallback | undefined;

function installLogRouter(): void {
  if (registeredLogCb) return;
  registeredLogCb = koffi.register((level: number, msg: string) => {
    const text = msg.replace(/\n$/, "");
    // Misleading on memcg-accounted kernels; the error says the real cause.
    if (/ulimit -l|RLIMIT_MEMLOCK|memlock/i.test(text)) return;
    recentLog.push(text);
    if (recentLog.length > 200) recentLog.shift();
    logger?.(LEVELS[level] ?? "debug", text);
  }, koffi.pointer(logProto));
  shimLib().setLog(registeredLogCb);
}

/** Routes libbpf's messages to fn; undefined silences them. */
export function setLibbpfLogger(fn: LibbpfLogger | undefined): void {
  logger = fn;
  shimLib();
}

function takeRecentLog(): string | undefined {
  const lines = recentLog.splice(0).filter((l) => l.trim() !== "");
  if (lines.length === 0) return undefined;
  return lines.slice(-60).join("\n");
}

function check(op: string, ret: number): number {
  if (ret < 0) throw new LibbpfError(op, ret, takeRecentLog());
  return ret;
}

function checkPtr<T>(op: string, ptr: T | null): T {
  if (ptr === null) {
    const e = koffi.errno();
    throw new LibbpfError(op, e === 0 ? 22 : e, takeRecentLog());
  }
  return ptr;
}

// ---- objects, programs, links ---------------------------------------------

type Handle = unknown;

export class BpfMap {
  constructor(
    readonly name: string,
    readonly fd: number,
  ) {}

  update(key: Buffer, value: Buffer, flags: number = 0): void {
    check(`update map ${this.name}`, lib().mapUpdate(this.fd, key, value, flags));
  }

  /** The value for key, or null if absent. */
  lookup(key: Buffer, valueSize: number): Buffer | null {
    const out = Buffer.alloc(valueSize);
    const ret = lib().mapLookup(this.fd, key, out) as number;
    if (ret === -2) return null; // ENOENT
    check(`lookup in map ${this.name}`, ret);
    return out;
  }

  /** Deletes key; false if it was absent. */
  delete(key: Buffer): boolean {
    const ret = lib().mapDelete(this.fd, key) as number;
    if (ret === -2) return false;
    check(`delete from map ${this.name}`, ret);
    return true;
  }

  keys(keySize: number): Buffer[] {
    const keys: Buffer[] = [];
    let prev: Buffer | null = null;
    for (;;) {
      const next = Buffer.alloc(keySize);
      const ret = lib().mapNextKey(this.fd, prev, next) as number;
      if (ret === -2) return keys;
      check(`iterate map ${this.name}`, ret);
      keys.push(next);
      prev = next;
    }
  }

  clear(keySize: number): void {
    for (const k of this.keys(keySize)) this.delete(k);
  }
}

export interface BpfProgramInfo {
  name: string;
  section: string;
  fd: number;
  /** Kernel program id, as `bpftool prog show id N` lists it. */
  id: number;
}

export interface BpfLink {
  program: string;
  destroy(): void;
}

export class BpfObject {
  private obj: Handle | null;
  private readonly links: { program: string; handle: Handle | null }[] = [];

  private constructor(
    obj: Handle,
    readonly path: string,
  ) {
    this.obj = obj;
  }

  static open(path: string): BpfObject {
    shimLib();
    recentLog.length = 0;
    return new BpfObject(checkPtr(`open BPF object ${path}`, lib().openFile(path, null)), path);
  }

  private handle(): Handle {
    if (this.obj === null) throw new Error(`BPF object ${this.path} is closed`);
    return this.obj;
  }

  private mapHandle(name: string): Handle {
    const m = lib().findMap(this.handle(), name);
    if (m === null) throw new Error(`BPF object ${this.path} has no map named ${name}`);
    return m;
  }

  /** Resizes a map; only before load(). */
  setMapMaxEntries(name: string, maxEntries: number): void {
    check(`resize map ${name}`, lib().mapSetMaxEntries(this.mapHandle(name), maxEntries));
  }

  load(): void {
    recentLog.length = 0;
    check(`load BPF object ${this.path}`, lib().load(this.handle()));
    recentLog.length = 0;
  }

  map(name: string): BpfMap {
    const fd = check(`fd of map ${name}`, lib().mapFd(this.mapHandle(name)));
    return new BpfMap(name, fd);
  }

  programs(): BpfProgramInfo[] {
    const out: BpfProgramInfo[] = [];
    const l = lib();
    for (let p = l.nextProgram(this.handle(), null); p !== null; p = l.nextProgram(this.handle(), p)) {
      const fd = l.programFd(p) as number;
      out.push({
        name: l.programName(p) as string,
        section: l.programSection(p) as string,
        fd,
        id: fd >= 0 ? (shimLib().progId(fd) as number) : 0,
      });
    }
    return out;
  }

  /** The fd of a loaded program, by its function name. */
  programFd(name: string): number {
    const l = lib();
    for (let p = l.nextProgram(this.handle(), null); p !== null; p = l.nextProgram(this.handle(), p)) {
      if ((l.programName(p) as string) === name) return check(`fd of program ${name}`, l.programFd(p));
    }
    throw new Error(`BPF object ${this.path} has no program named ${name}`);
  }

  /** Leaves a program out of load() (call before load). */
  setAutoload(name: string, autoload: boolean): void {
    const l = lib();
    for (let p = l.nextProgram(this.handle(), null); p !== null; p = l.nextProgram(this.handle(), p)) {
      if ((l.programName(p) as string) === name) {
        check(`set autoload of ${name}`, l.programSetAutoload(p, autoload));
        return;
      }
    }
    throw new Error(`BPF object ${this.path} has no program named ${name}`);
  }

  /** Attaches one program by its SEC() name (as attachAll does); the link closes with the process. */
  attachProgram(name: string): BpfLink {
    const l = lib();
    for (let p = l.nextProgram(this.handle(), null); p !== null; p = l.nextProgram(this.handle(), p)) {
      if ((l.programName(p) as string) !== name) continue;
      recentLog.length = 0;
      const handle = checkPtr(`attach ${name} (${l.programSection(p) as string})`, l.attach(p));
      const entry = { program: name, handle: handle as Handle | null };
      this.links.push(entry);
      return {
        program: name,
        destroy: () => {
          if (entry.handle !== null) {
            l.linkDestroy(entry.handle);
            entry.handle = null;
          }
        },
      };
    }
    throw new Error(`BPF object ${this.path} has no program named ${name}`);
  }

  /** Attaches every program by its SEC() name; links close with the process. */
  attachAll(): BpfLink[] {
    const l = lib();
    const attached: BpfLink[] = [];
    for (let p = l.nextProgram(this.handle(), null); p !== null; p = l.nextProgram(this.handle(), p)) {
      const program = l.programName(p) as string;
      const section = l.programSection(p) as string;
      recentLog.length = 0;
      const handle = checkPtr(`attach ${program} (${section})`, l.attach(p));
      const entry = { program, handle: handle as Handle | null };
      this.links.push(entry);
      attached.push({
        program,
        destroy: () => {
          if (entry.handle !== null) {
            l.linkDestroy(entry.handle);
            entry.handle = null;
          }
        },
      });
    }
    return attached;
  }

  /** Detaches all links and frees the object (maps and programs go with it). */
  close(): void {
    for (const link of this.links) {
      if (link.handle !== null) lib().linkDestroy(link.handle);
      link.handle = null;
    }
    this.links.length = 0;
    if (this.obj !== null) {
      lib().close(this.obj);
      this.obj = null;
    }
  }
}

// ---- TC (tcx) links -----------------------------------------------------------

/** enum bpf_attach_type values of kernel 6.6+ (absent from older uapi headers). */
const BPF_TCX_INGRESS = 46;
const BPF_TCX_EGRESS = 47;

export type TcDirection = "ingress" | "egress";

/** The ifindex of a network interface in this process's namespace. */
export function interfaceIndex(ifname: string): number {
  const index = libcLib().ifNameToIndex(ifname) as number;
  if (index === 0) throw new LibbpfError(`find interface ${ifname}`, koffi.errno() || 19);
  return index;
}

const CLONE_NEWNET = 0x40000000;

/**
 * Runs fn with the calling (main) thread inside the network namespace at
 * nsPath (e.g. /run/netns/<name> or /proc/<pid>/ns/net), then moves it back.
 * Only this thread moves: fn must be synchronous. Interface names resolve
 * and tcx links attach in the namespace the thread is in.
 */
export function inNetworkNamespace<T>(nsPath: string, fn: () => T): T {
  const c = libcLib();
  const home = openSync("/proc/thread-self/ns/net", "r");
  try {
    const target = openSync(nsPath, "r");
    try {
      if ((c.setns(target, CLONE_NEWNET) as number) !== 0) throw new LibbpfError(`enter network namespace ${nsPath}`, koffi.errno());
    } finally {
      closeSync(target);
    }
    try {
      return fn();
    } finally {
      if ((c.setns(home, CLONE_NEWNET) as number) !== 0) {
        // Never run on in the wrong namespace.
        throw new Error(`cannot return to the original network namespace: ${errnoName(koffi.errno())}`);
      }
    }
  } finally {
    closeSync(home);
  }
}

/**
 * Attaches a loaded SEC("tc") program to an interface's tcx hook (kernel
 * 6.6+) as a BPF link: a file descriptor, so the attachment goes away with
 * this process, even on SIGKILL. Appended after existing tcx programs.
 * Uses bpf_link_create with the raw attach type because libbpf 1.1 has no
 * bpf_program__attach_tcx (1.3+).
 */
export function attachTcx(programFd: number, ifindex: number, direction: TcDirection, program = "program"): BpfLink {
  const fd = lib().linkCreate(programFd, ifindex, direction === "ingress" ? BPF_TCX_INGRESS : BPF_TCX_EGRESS, null) as number;
  if (fd < 0) {
    const e = Math.abs(fd);
    const hint =
      errnoName(e) === "EINVAL"
        ? "tcx links need kernel 6.6 or later"
        : errnoName(e) === "ENODEV"
          ? `no interface with index ${ifindex}`
          : undefined;
    throw new LibbpfError(`attach ${program} to tcx/${direction} of ifindex ${ifindex}`, fd, hint);
  }
  let open = true;
  return {
    program,
    destroy: () => {
      if (open) libcLib().close(fd);
      open = false;
    },
  };
}

// ---- ring buffer and counters (shim) --------------------------------------

export interface DrainResult {
  /** Bytes written to the output buffer: records of u32 length, u32 zero, data, padded to 8. */
  bytes: number;
  records: number;
}

export class RingBufferReader {
  private rb: Handle | null;

  private constructor(
    rb: Handle,
    readonly mapName: string,
  ) {
    this.rb = rb;
  }

  static open(map: BpfMap): RingBufferReader {
    return new RingBufferReader(checkPtr(`mmap ring buffer ${map.name}`, shimLib().rbOpen(map.fd)), map.name);
  }

  /** Copies as many ready records as fit into out; the rest stay for the next call. */
  drain(out: Buffer): DrainResult {
    if (this.rb === null) throw new Error(`ring buffer ${this.mapName} is closed`);
    const records = [0];
    const ret = Number(shimLib().rbDrain(this.rb, out, out.length, records));
    check(`drain ring buffer ${this.mapName}`, ret);
    return { bytes: ret, records: records[0] ?? 0 };
  }

  pendingBytes(): number {
    if (this.rb === null) return 0;
    return Number(shimLib().rbPending(this.rb));
  }

  close(): void {
    if (this.rb !== null) shimLib().rbClose(this.rb);
    this.rb = null;
  }
}

/** Sums `count` u64 slots of a per-CPU array map over all CPUs. */
export function sumPerCpuArray(map: BpfMap, count: number): bigint[] {
  const out: (number | bigint)[] = new Array<number>(count).fill(0);
  check(`read per-CPU map ${map.name}`, shimLib().percpuSum(map.fd, count, out));
  return out.map((v) => BigInt(v));
}

export function numPossibleCpus(): number {
  return check("count possible CPUs", lib().numPossibleCpus());
}

/** CLOCK_REALTIME - CLOCK_BOOTTIME, in ns: add to a bpf_ktime_get_boot_ns() stamp. */
export function bootToWallOffsetNs(): bigint {
  return BigInt(shimLib().bootToWallOffsetNs());
}
