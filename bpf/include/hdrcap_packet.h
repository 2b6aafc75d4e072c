/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The one hand-written definition of what crosses the kernel/userspace
 * boundary for packet-level capture (bpf/src/tc_capture.bpf.c): the packet
 * event in the ring buffer, the config map value, the filter map keys and
 * the per-CPU counter indices. Kept apart from hdrcap.h (the socket-level
 * capture) so the two evolve independently; the TypeScript view is
 * generated from the compiled object's BTF, so every constant userspace
 * needs is an enum.
 *
 * No kernel types here: compiled for the BPF target and for the host.
 */
#ifndef HDRCAP_PACKET_H
#define HDRCAP_PACKET_H

#ifdef __VMLINUX_H__
/* BPF side: vmlinux.h already defines __u8..__u64. */
#else
#include <linux/types.h>
#endif

enum hdrcap_pkt_limits {
	/* Largest payload prefix copied per packet. */
	HDRCAP_PKT_PAYLOAD_MAX = 4096,
	/* Entries of the port set and of each CIDR trie. */
	HDRCAP_PKT_PORT_SET_MAX = 1024,
	HDRCAP_PKT_CIDR_SET_MAX = 1024,
	HDRCAP_PKT_COMM_LEN = 16,
};

enum hdrcap_pkt_direction {
	HDRCAP_PKT_DIR_INGRESS = 0,
	HDRCAP_PKT_DIR_EGRESS = 1,
};

/* Bits of hdrcap_packet_config.filter_flags: which filters are in force. */
enum hdrcap_pkt_filter_flags {
	/* The source or the destination port must be in pkt_ports. */
	HDRCAP_PKT_FILTER_PORT = 1,
	/* The source or the destination address must be in a CIDR trie. */
	HDRCAP_PKT_FILTER_CIDR = 2,
};

/* Bits of hdrcap_packet_config.protocols; 0 means every protocol. */
enum hdrcap_pkt_proto_mask {
	HDRCAP_PKT_PROTO_TCP = 1,
	HDRCAP_PKT_PROTO_UDP = 2,
	HDRCAP_PKT_PROTO_OTHER = 4,
};

/* Bits of hdrcap_packet_event.flags. */
enum hdrcap_pkt_flags {
	HDRCAP_PKT_F_TCP_MSS = 1,
	HDRCAP_PKT_F_TCP_WSCALE = 2,
	HDRCAP_PKT_F_TCP_SACK_PERM = 4,
	HDRCAP_PKT_F_TCP_TIMESTAMPS = 8,
	HDRCAP_PKT_F_TCP_SACK = 16,
	/* An IPv4 fragment other than the first: no L4 header. */
	HDRCAP_PKT_F_FRAGMENT = 32,
	/* The L4 header did not fit in the packet: L4 fields are zero. */
	HDRCAP_PKT_F_L4_TRUNCATED = 64,
	/* The payload was longer than what was copied. */
	HDRCAP_PKT_F_PAYLOAD_TRUNCATED = 128,
	/* A GSO/GRO aggregate: one header for several wire segments. */
	HDRCAP_PKT_F_GSO = 256,
};

enum hdrcap_pkt_counter {
	/* Packets the program ran on. */
	HDRCAP_PKT_CNT_SEEN = 0,
	/* Packets that failed a filter (non-IP packets included). */
	HDRCAP_PKT_CNT_FILTERED = 1,
	/* Packets that passed every filter: seen = filtered + matched. */
	HDRCAP_PKT_CNT_MATCHED = 2,
	/* Matched packets skipped by 1-in-N sampling. */
	HDRCAP_PKT_CNT_SAMPLED_OUT = 3,
	/* Events written: matched = sampled_out + emitted + ringbuf_full. */
	HDRCAP_PKT_CNT_EMITTED = 4,
	/* Events dropped because the ring buffer was full. */
	HDRCAP_PKT_CNT_RINGBUF_FULL = 5,
	/* Packets that are not IPv4/IPv6 or whose IP header is malformed. */
	HDRCAP_PKT_CNT_NOT_IP = 6,
	/* Payload bytes of emitted packets that were not copied. */
	HDRCAP_PKT_CNT_PAYLOAD_UNCOPIED = 7,
	HDRCAP_PKT_CNT__COUNT = 8,
};

/*
 * One packet's header elements (addresses and ports in wire order: source
 * then destination), followed by captured_len bytes of L4 payload. Records
 * are variable length: payload[] is the maximum.
 */
struct hdrcap_packet_event {
	__u64 ts_boot_ns;       /* bpf_ktime_get_boot_ns() */
	__u64 socket_cookie;    /* egress: the sending socket's cookie; 0 otherwise */
	__u32 ifindex;
	__u32 skb_len;          /* bytes of the packet from its L2 header on */
	__u32 seq;              /* TCP: host order */
	__u32 ack_seq;
	__u32 tsval;            /* TCP timestamps option, when HDRCAP_PKT_F_TCP_TIMESTAMPS */
	__u32 tsecr;
	__u32 flow_label;       /* IPv6 */
	__u32 payload_len;      /* L4 payload bytes this packet carries */
	__u32 flags;            /* enum hdrcap_pkt_flags */
	__u32 tgid;             /* egress: the sending socket's process, when known; else 0 */
	__u8 saddr[16];         /* IPv4 in the first 4 bytes, network order */
	__u8 daddr[16];
	__u16 sport;            /* host order */
	__u16 dport;
	__u16 family;           /* AF_INET or AF_INET6 */
	__u16 ip_total_len;     /* IPv4 total length; IPv6 payload length + 40 */
	__u16 ip_id;            /* IPv4 identification */
	__u16 frag_off;         /* IPv4 flags and fragment offset, host order */
	__u16 window;           /* TCP raw window (unscaled) */
	__u16 mss;
	__u16 udp_len;
	__u16 tcp_flags;        /* FIN 0x1 .. CWR 0x80, AE (ex-NS) 0x100 */
	__u16 captured_len;     /* bytes in payload[] */
	__u8 direction;         /* enum hdrcap_pkt_direction */
	__u8 ip_proto;
	__u8 ttl;               /* IPv4 TTL or IPv6 hop limit */
	__u8 dscp;
	__u8 ecn;
	__u8 wscale;
	__u8 tcp_hdr_len;       /* data offset * 4 */
	__u8 sack_blocks;       /* SACK blocks in the option, when HDRCAP_PKT_F_TCP_SACK */
	char comm[HDRCAP_PKT_COMM_LEN]; /* owning process, when known */
	__u8 payload[HDRCAP_PKT_PAYLOAD_MAX];
};

/* Value of the single-entry config map; rewritten on every filter change. */
struct hdrcap_packet_config {
	__u32 filter_flags;     /* enum hdrcap_pkt_filter_flags */
	__u32 protocols;        /* enum hdrcap_pkt_proto_mask; 0 = all */
	__u32 sample_every;     /* 1-in-N sampling of matched packets; 0 or 1 = all */
	__u32 payload_bytes;    /* payload prefix copied, <= HDRCAP_PKT_PAYLOAD_MAX */
};

/* Keys of the LPM tries (prefixlen first, as the kernel requires). */
struct hdrcap_cidr4_key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct hdrcap_cidr6_key {
	__u32 prefixlen;
	__u8 addr[16];
};

/* Value of the socket cookie -> process map (process identity join). */
struct hdrcap_sock_owner {
	__u32 tgid;
	__u32 pad;
	char comm[HDRCAP_PKT_COMM_LEN];
};

#endif /* HDRCAP_PACKET_H */
