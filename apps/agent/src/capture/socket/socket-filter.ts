/**
 * The socket capture filter: validation, and its encoding into the BPF
 * config map value and filter-set keys (layouts generated from BTF).
 */
import {
  HDRCAP_CAPTURE_DEFAULT,
  HDRCAP_CAPTURE_MAX,
  HDRCAP_COMM_LEN,
  HDRCAP_FILTER_CGROUP,
  HDRCAP_FILTER_COMM,
  HDRCAP_FILTER_PORT_ANY,
  HDRCAP_FILTER_PORT_LOCAL,
  HDRCAP_FILTER_PORT_REMOTE,
  HDRCAP_FILTER_SET_MAX,
  HDRCAP_FILTER_TGID,
  HDRCAP_PORT_ANY,
  HDRCAP_PORT_LOCAL,
  HDRCAP_PORT_REMOTE,
  HDRCAP_ROLE_CLIENT,
  HDRCAP_ROLE_SERVER,
  HDRCAP_ROLE_UNKNOWN,
  hdrcapConfigLayout,
  hdrcapPortKeyLayout,
} from "../record-layout.generated.ts";

export type RoleFilter = "client" | "server" | "any";

/** What to capture. Empty arrays and absent fields mean "all". */
export interface SocketCaptureFilter {
  /** Bytes copied per syscall, 1..65536; default 4096. */
  captureBytes?: number;
  /** A connection matches if its local or its remote port is listed. */
  ports?: number[];
  /** The connection's local port must be listed. */
  localPorts?: number[];
  /** The connection's remote port must be listed. */
  remotePorts?: number[];
  /** Process ids (tgid) whose syscalls are captured. */
  tgids?: number[];
  /** cgroup v2 ids (as bpf_get_current_cgroup_id() reports them). */
  cgroupIds?: (bigint | number)[];
  /** Prefix of the thread's comm (at most 15 bytes are compared). */
  comm?: string;
  /** client: sockets that called connect(); server: sockets from accept(). */
  role?: RoleFilter;
}

/** A validated filter with every field present (empty = all). */
export type NormalizedSocketCaptureFilter = Required<Omit<SocketCaptureFilter, "cgroupIds">> & { cgroupIds: bigint[] };

export function normalizeFilter(f: SocketCaptureFilter): NormalizedSocketCaptureFilter {
  const captureBytes = f.captureBytes ?? HDRCAP_CAPTURE_DEFAULT;
  if (!Number.isInteger(captureBytes) || captureBytes < 1 || captureBytes > HDRCAP_CAPTURE_MAX)
    throw new RangeError(`captureBytes must be an integer in 1..${HDRCAP_CAPTURE_MAX}, got ${captureBytes}`);
  const ports = (name: string, list: number[] | undefined) => {
    for (const p of list ?? [])
      if (!Number.isInteger(p) || p < 1 || p > 65535) throw new RangeError(`${name}: invalid port ${p}`);
    if ((list?.length ?? 0) > HDRCAP_FILTER_SET_MAX) throw new RangeError(`${name}: more than ${HDRCAP_FILTER_SET_MAX} ports`);
    return [...new Set(list ?? [])];
  };
  const tgids = [...new Set(f.tgids ?? [])];
  for (const t of tgids) if (!Number.isInteger(t) || t < 1 || t > 0xffffffff) throw new RangeError(`invalid tgid ${t}`);
  const cgroupIds = [...new Set((f.cgroupIds ?? []).map((c) => BigInt(c)))];
  if (tgids.length > HDRCAP_FILTER_SET_MAX || cgroupIds.length > HDRCAP_FILTER_SET_MAX)
    throw new RangeError(`filter sets hold at most ${HDRCAP_FILTER_SET_MAX} entries`);
  const comm = f.comm ?? "";
  if (Buffer.byteLength(comm, "latin1") > HDRCAP_COMM_LEN - 1)
    throw new RangeError(`comm prefix longer than ${HDRCAP_COMM_LEN - 1} bytes: ${comm}`);
  const role = f.role ?? "any";
  if (!["client", "server", "any"].includes(role)) throw new RangeError(`invalid role ${role}`);
  return {
    captureBytes,
    ports: ports("ports", f.ports),
    localPorts: ports("localPorts", f.localPorts),
    remotePorts: ports("remotePorts", f.remotePorts),
    tgids,
    cgroupIds,
    comm,
    role,
  };
}

export function encodeConfig(f: NormalizedSocketCaptureFilter, connIdBase: bigint, generation: number): Buffer {
  const L = hdrcapConfigLayout.fields;
  const buf = Buffer.alloc(hdrcapConfigLayout.size);
  let flags = 0;
  if (f.tgids.length) flags |= HDRCAP_FILTER_TGID;
  if (f.cgroupIds.length) flags |= HDRCAP_FILTER_CGROUP;
  if (f.comm.length) flags |= HDRCAP_FILTER_COMM;
  if (f.ports.length) flags |= HDRCAP_FILTER_PORT_ANY;
  if (f.localPorts.length) flags |= HDRCAP_FILTER_PORT_LOCAL;
  if (f.remotePorts.length) flags |= HDRCAP_FILTER_PORT_REMOTE;
  buf.writeBigUInt64LE(connIdBase, L.conn_id_base.offset);
  buf.writeUInt32LE(flags, L.filter_flags.offset);
  buf.writeUInt32LE(f.captureBytes, L.capture_len.offset);
  buf.writeUInt32LE(generation >>> 0, L.generation.offset);
  const role = f.role === "client" ? HDRCAP_ROLE_CLIENT : f.role === "server" ? HDRCAP_ROLE_SERVER : HDRCAP_ROLE_UNKNOWN;
  buf.writeUInt8(role, L.role.offset);
  const commLen = buf.write(f.comm, L.comm_prefix.offset, L.comm_prefix.size - 1, "latin1");
  buf.writeUInt8(commLen, L.comm_prefix_len.offset);
  return buf;
}

export function encodePortKey(port: number, side: "any" | "local" | "remote"): Buffer {
  const L = hdrcapPortKeyLayout.fields;
  const buf = Buffer.alloc(hdrcapPortKeyLayout.size);
  buf.writeUInt16LE(port, L.port.offset);
  buf.writeUInt16LE(side === "local" ? HDRCAP_PORT_LOCAL : side === "remote" ? HDRCAP_PORT_REMOTE : HDRCAP_PORT_ANY, L.side.offset);
  return buf;
}

/** The encoded keys of every filter set, per BPF map. */
export function filterSetKeys(f: NormalizedSocketCaptureFilter): Record<"filter_tgids" | "filter_cgroups" | "filter_ports", Buffer[]> {
  const u32 = (v: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    return b;
  };
  const u64 = (v: bigint) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(v);
    return b;
  };
  return {
    filter_tgids: f.tgids.map(u32),
    filter_cgroups: f.cgroupIds.map(u64),
    filter_ports: [
      ...f.ports.map((p) => encodePortKey(p, "any")),
      ...f.localPorts.map((p) => encodePortKey(p, "local")),
      ...f.remotePorts.map((p) => encodePortKey(p, "remote")),
    ],
  };
}
