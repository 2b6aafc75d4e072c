/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The one hand-written definition of what crosses the kernel/userspace
 * boundary: the chunk event in the ring buffer, the filter/config map value,
 * and the per-CPU counter indices. The TypeScript view of it is generated
 * from the compiled object's BTF (bpf/scripts/gen-record-layout.mjs), so
 * every constant userspace needs is an enum (macros leave no BTF behind).
 *
 * No kernel types here: the same header is compiled for the BPF target and
 * for the host shim.
 */
#ifndef HDRCAP_H
#define HDRCAP_H

#ifdef __VMLINUX_H__
/* BPF side: vmlinux.h already defines __u8..__u64. */
#else
#include <linux/types.h>
#endif

enum hdrcap_limits {
	/* Largest data payload of one chunk event. */
	HDRCAP_CHUNK_MAX = 16384,
	/* Largest capture length per syscall (several chunk events). */
	HDRCAP_CAPTURE_MAX = 65536,
	/* Capture length used when the config says 0. */
	HDRCAP_CAPTURE_DEFAULT = 4096,
	/* iovecs of readv/writev/sendmsg/recvmsg whose bytes are copied. */
	HDRCAP_MAX_IOV = 8,
	HDRCAP_COMM_LEN = 16,
	/* Entries of the tgid, cgroup and port filter sets. */
	HDRCAP_FILTER_SET_MAX = 1024,
};

enum hdrcap_direction {
	HDRCAP_DIR_INGRESS = 0,
	HDRCAP_DIR_EGRESS = 1,
};

enum hdrcap_role {
	HDRCAP_ROLE_UNKNOWN = 0,
	HDRCAP_ROLE_CLIENT = 1,
	HDRCAP_ROLE_SERVER = 2,
};

/* Bits of hdrcap_chunk_event.flags. */
enum hdrcap_chunk_flags {
	/* The syscall's bytes start with an HTTP/1.x start-line token. */
	HDRCAP_CHUNK_F_HTTP_START = 1,
	/* Bytes of this syscall were not copied (capture length or iovec limit). */
	HDRCAP_CHUNK_F_TRUNCATED = 2,
};

/* Bits of hdrcap_config.filter_flags: which filter sets are in force. */
enum hdrcap_filter_flags {
	HDRCAP_FILTER_TGID = 1,
	HDRCAP_FILTER_CGROUP = 2,
	HDRCAP_FILTER_COMM = 4,
	HDRCAP_FILTER_PORT_ANY = 8,
	HDRCAP_FILTER_PORT_LOCAL = 16,
	HDRCAP_FILTER_PORT_REMOTE = 32,
};

/* Which side(s) a port in the port filter set must appear on. */
enum hdrcap_port_side {
	HDRCAP_PORT_ANY = 0,
	HDRCAP_PORT_LOCAL = 1,
	HDRCAP_PORT_REMOTE = 2,
};

enum hdrcap_counter {
	/* Data syscalls on filtered-in TCP sockets that returned bytes. */
	HDRCAP_CNT_SYSCALLS_SEEN = 0,
	/* Chunk events written to the ring buffer. */
	HDRCAP_CNT_CHUNKS_EMITTED = 1,
	/* Chunk events dropped because the ring buffer was full. */
	HDRCAP_CNT_RINGBUF_FULL = 2,
	/* Syscalls starting an HTTP message whose bytes were not all copied. */
	HDRCAP_CNT_TRUNCATED = 3,
	/* Bytes of HTTP connections not copied (capture length, iovec limit, sendfile). */
	HDRCAP_CNT_BYTES_UNCOPIED = 4,
	/* Connections the kernel started tracking (connect, accept, first sight). */
	HDRCAP_CNT_CONNS_TRACKED = 5,
	/* Connections classified as HTTP/1.x. */
	HDRCAP_CNT_CONNS_HTTP = 6,
	/* Connections classified as not HTTP (ignored from then on). */
	HDRCAP_CNT_CONNS_NOT_HTTP = 7,
	/* Failed reads of user or kernel memory. */
	HDRCAP_CNT_READ_ERRORS = 8,
	HDRCAP_CNT__COUNT = 9,
};

/*
 * One slice of one direction of one connection's byte stream. The record in
 * the ring buffer is the header followed by data_len bytes of data (records
 * are variable length; data[] is the maximum). Chunks of one direction tile
 * the stream: [stream_offset, stream_offset + length) with the first
 * data_len bytes copied, so gaps are explicit.
 *
 * A record with length 0 carries no data (no syscall emits one): it is the
 * close notice of an HTTP connection, sent once when the kernel stops
 * tracking it, so userspace can drop its state at once. Only conn_id,
 * ts_boot_ns, role and the endpoints are meaningful in it.
 */
struct hdrcap_chunk_event {
	__u64 ts_boot_ns;       /* bpf_ktime_get_boot_ns() at syscall exit */
	__u64 conn_id;
	__u64 cgroup_id;
	__u64 stream_offset;
	__u32 pid;              /* thread id */
	__u32 tgid;             /* process id */
	__u32 length;           /* bytes the syscall carried from stream_offset on, in this chunk */
	__u32 data_len;         /* bytes copied into data[] */
	__u8 local_addr[16];    /* IPv4 in the first 4 bytes, network order */
	__u8 remote_addr[16];
	__u16 local_port;       /* host order */
	__u16 remote_port;      /* host order */
	__u16 family;           /* AF_INET or AF_INET6 */
	__u8 direction;         /* enum hdrcap_direction */
	__u8 role;              /* enum hdrcap_role */
	__u32 flags;            /* enum hdrcap_chunk_flags */
	__u32 syscall_len;      /* total bytes of the syscall this chunk came from */
	char comm[HDRCAP_COMM_LEN];
	__u8 data[HDRCAP_CHUNK_MAX];
};

/* Value of the single-entry config map; rewritten on every filter change. */
struct hdrcap_config {
	__u64 conn_id_base;     /* connection ids are conn_id_base + n */
	__u32 filter_flags;     /* enum hdrcap_filter_flags */
	__u32 capture_len;      /* bytes copied per syscall, <= HDRCAP_CAPTURE_MAX */
	__u32 generation;       /* bumped on each change; invalidates cached per-connection verdicts */
	__u8 role;              /* enum hdrcap_role; HDRCAP_ROLE_UNKNOWN = any */
	__u8 comm_prefix_len;
	__u8 pad[2];
	char comm_prefix[HDRCAP_COMM_LEN];
};

/* Key of the port filter set. */
struct hdrcap_port_key {
	__u16 port;             /* host order */
	__u16 side;             /* enum hdrcap_port_side */
};

#endif /* HDRCAP_H */
