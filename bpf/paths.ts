/**
 * Absolute paths of the built BPF artifacts. They live in bpf/build/ of the
 * source tree; an installed bundle points HDRCAP_BPF_DIR at the folder that
 * holds them instead.
 */
import { fileURLToPath } from "node:url";
import path from "node:path";

/** Folder with http_sock.bpf.o and libhdrcap_shim.so. */
export const bpfBuildDir: string = path.resolve(
  process.env.HDRCAP_BPF_DIR ?? fileURLToPath(new URL("./build/", import.meta.url)),
);

export const httpSockObjectPath: string = path.join(bpfBuildDir, "http_sock.bpf.o");
export const shimLibraryPath: string = path.join(bpfBuildDir, "libhdrcap_shim.so");
/** Packet-level capture (TC/tcx), bpf/src/tc_capture.bpf.c. */
export const tcCaptureObjectPath: string = path.join(bpfBuildDir, "tc_capture.bpf.o");
