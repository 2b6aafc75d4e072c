/**
 * What of a capture's filter the packet source can honour, and where: the TC program filters by
 * port on either side (plus CIDR, protocol, sampling); the rest is checked per chunk in the agent.
 */
import type { CapturedChunk } from "../chunk.ts";
import type { SocketCaptureFilter } from "../socket/socket-filter.ts";

/**
 * The packet source's kernel filter knows ports on either side only. A filter on local or remote
 * ports alone is narrowed there to those ports on either side, then checked exactly per chunk.
 */
export function kernelPacketPorts(filter: SocketCaptureFilter): number[] | undefined {
  if (filter.ports?.length) return filter.ports;
  const sided = [...(filter.localPorts ?? []), ...(filter.remotePorts ?? [])];
  return sided.length ? sided : undefined;
}

/**
 * What of a filter the packet source checks in the agent: role (learnt from the handshake, as the
 * socket source learns it from connect/accept: a connection of unknown role never matches a role)
 * and local/remote ports. Process filters are refused: a TC hook knows a packet's process only on
 * egress, so they cannot be applied to both directions of a connection.
 */
export function packetChunkFilter(filter: SocketCaptureFilter): ((chunk: CapturedChunk) => boolean) | null {
  if (filter.tgids?.length || filter.cgroupIds?.length || filter.comm)
    throw new RangeError("process filters (pids, cgroups, comm) need the socket source: packets carry no process on ingress");
  const role = filter.role === undefined || filter.role === "any" ? null : filter.role;
  const local = filter.localPorts?.length ? new Set(filter.localPorts) : null;
  const remote = filter.remotePorts?.length ? new Set(filter.remotePorts) : null;
  if (role === null && local === null && remote === null) return null;
  return (c) => (role === null || c.role === role) && (local === null || local.has(c.local.port)) && (remote === null || remote.has(c.remote.port));
}
