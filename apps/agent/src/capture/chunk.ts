/**
 * The unit that every capture source hands to the HTTP decoder: a slice of one
 * direction of one connection's byte stream, as seen by the kernel.
 * Sources (syscall tracepoints, TC/cgroup_skb + reassembly) produce these;
 * the HTTP reassembler consumes them. Nothing here is source specific.
 */
export type Direction = "ingress" | "egress";
export type Role = "client" | "server" | "unknown";

export interface Endpoint {
  ip: string;
  port: number;
}

export interface CapturedChunk {
  /** Wall-clock time of the syscall/packet, nanoseconds since the Unix epoch. */
  tsNs: bigint;
  pid: number;
  tgid: number;
  comm: string;
  cgroupId: bigint;
  /** Stable id of the connection for its whole life (same for both directions). */
  connId: string;
  local: Endpoint;
  remote: Endpoint;
  direction: Direction;
  role: Role;
  /** Offset of data[0] within this direction's byte stream of the connection. */
  streamOffset: number;
  /** The bytes captured (may be shorter than `length`). */
  data: Buffer;
  /** True number of bytes the syscall/packet carried at this offset. */
  length: number;
  /**
   * The source saw data[0] begin a write/syscall whose first bytes are an
   * HTTP/1.x start-line token: a likely message boundary, which lets a decoder
   * that lost its place pick up again there. Absent when the source cannot tell.
   */
  startsMessage?: boolean;
}
