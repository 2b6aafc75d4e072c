// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Packet-level capture of L3/L4 header elements on a TC hook (tcx links,
 * ingress and/or egress of one interface).
 *
 * Owns: locating the IP header behind whatever L2 header the device has,
 * parsing IPv4/IPv6 (with extension headers), TCP (with options) and UDP
 * headers, the filters (protocol, port set, CIDR tries, 1-in-N sampling),
 * and one ring buffer event per packet with an optional payload prefix
 * (layout in bpf/include/hdrcap_packet.h).
 *
 * Every packet on the interface passes through here, so the filters run
 * on the fixed headers before the TCP options are parsed and the payload
 * is copied. The program only observes: it always returns TCX_NEXT, so the
 * packet continues to the next program / the stack unchanged.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>
#include "hdrcap_packet.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_INET 2
#define AF_INET6 10
#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8
#define IPV6_HLEN 40
/* IPv6 extension headers (not in vmlinux.h: they are macros in the uapi). */
#define IPPROTO_HOPOPTS 0
#define IPPROTO_ROUTING 43
#define IPPROTO_FRAGMENT 44
#define IPPROTO_DSTOPTS 60
#define IPV4_FRAG_OFFSET_MASK 0x1fff
#define IPV6_MAX_EXT_HEADERS 6
#define TCP_MAX_OPTION_BYTES 40
#define SKB_GSO_PRESENT(skb) ((skb)->gso_segs > 1)

/* Keep the enums and structs in the object's BTF: the TS layout is generated from it. */
enum hdrcap_pkt_limits hdrcap_btf_pkt_limits __attribute__((unused));
enum hdrcap_pkt_direction hdrcap_btf_pkt_direction __attribute__((unused));
enum hdrcap_pkt_filter_flags hdrcap_btf_pkt_filter_flags __attribute__((unused));
enum hdrcap_pkt_proto_mask hdrcap_btf_pkt_proto_mask __attribute__((unused));
enum hdrcap_pkt_flags hdrcap_btf_pkt_flags __attribute__((unused));
enum hdrcap_pkt_counter hdrcap_btf_pkt_counter __attribute__((unused));
struct hdrcap_packet_event *hdrcap_btf_packet_event __attribute__((unused));
struct hdrcap_packet_config *hdrcap_btf_packet_config __attribute__((unused));
struct hdrcap_cidr4_key *hdrcap_btf_cidr4_key __attribute__((unused));
struct hdrcap_cidr6_key *hdrcap_btf_cidr6_key __attribute__((unused));
struct hdrcap_sock_owner *hdrcap_btf_sock_owner __attribute__((unused));

/* Per-CPU staging: the event and room for the TCP options. Options live
 * here rather than on the stack so they can be indexed by a variable. */
struct scratch {
	__u8 opts[64];
	__u32 opt_off;          /* cursor of tcp_option_step */
	__u32 opt_len;
	struct hdrcap_packet_event ev;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hdrcap_packet_config);
} pkt_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HDRCAP_PKT_PORT_SET_MAX);
	__type(key, __u16);     /* host order */
	__type(value, __u8);
} pkt_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, HDRCAP_PKT_CIDR_SET_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct hdrcap_cidr4_key);
	__type(value, __u8);
} pkt_cidr4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, HDRCAP_PKT_CIDR_SET_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct hdrcap_cidr6_key);
	__type(value, __u8);
} pkt_cidr6 SEC(".maps");

/* struct sock address -> owning process, filled by the optional
 * connect/accept tracepoints below and looked up for packets whose skb
 * carries a full local socket (egress; ingress skbs get theirs later). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct hdrcap_sock_owner);
} sock_owners SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, HDRCAP_PKT_CNT__COUNT);
	__type(key, __u32);
	__type(value, __u64);
} pkt_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} pkt_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024); /* userspace may resize before load */
} pkt_events SEC(".maps");

static __always_inline void count(__u32 idx, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&pkt_counters, &idx);

	if (v)
		*v += n;
}

/* Where the IP header starts: after an Ethernet header (with at most one
 * VLAN tag left in the packet), or at 0 on devices without L2 headers.
 * Returns -1 when the packet is not IP. */
static __always_inline int l3_offset(struct __sk_buff *skb, __u16 *eth_proto)
{
	__u16 proto = bpf_ntohs((__u16)skb->protocol);
	__u8 l2[ETH_HLEN + 4];
	__u16 type, inner;

	if (proto != ETH_P_IP && proto != ETH_P_IPV6)
		return -1;
	*eth_proto = proto;
	if (bpf_skb_load_bytes(skb, 0, l2, sizeof(l2)) == 0) {
		type = (__u16)l2[12] << 8 | l2[13];
		if (type == proto)
			return ETH_HLEN;
		if (type == ETH_P_8021Q || type == ETH_P_8021AD) {
			inner = (__u16)l2[16] << 8 | l2[17];
			if (inner == proto)
				return ETH_HLEN + 4;
		}
		if ((l2[0] >> 4) == (proto == ETH_P_IP ? 4 : 6))
			return 0;
		return -1;
	}
	/* Shorter than an Ethernet header plus a tag: only an L3 packet fits. */
	if (bpf_skb_load_bytes(skb, 0, l2, 1) == 0 && (l2[0] >> 4) == (proto == ETH_P_IP ? 4 : 6))
		return 0;
	return -1;
}

/* Fills the IPv4 fields; returns the L4 offset, or -1 if malformed. */
static __always_inline int parse_ipv4(struct __sk_buff *skb, int l3, struct hdrcap_packet_event *ev,
				      __u32 *ip_end)
{
	struct iphdr ip;
	__u32 ihl;

	if (bpf_skb_load_bytes(skb, l3, &ip, sizeof(ip)))
		return -1;
	ihl = ip.ihl * 4;
	if (ip.version != 4 || ihl < sizeof(ip))
		return -1;
	ev->family = AF_INET;
	ev->ttl = ip.ttl;
	ev->dscp = ip.tos >> 2;
	ev->ecn = ip.tos & 3;
	ev->ip_total_len = bpf_ntohs(ip.tot_len);
	ev->ip_id = bpf_ntohs(ip.id);
	ev->frag_off = bpf_ntohs(ip.frag_off);
	ev->ip_proto = ip.protocol;
	__builtin_memcpy(ev->saddr, &ip.saddr, 4);
	__builtin_memcpy(ev->daddr, &ip.daddr, 4);
	/* GSO aggregates may carry 0 (BIG TCP): the skb length is the truth. */
	*ip_end = ev->ip_total_len ? l3 + ev->ip_total_len : skb->len;
	if (ev->frag_off & IPV4_FRAG_OFFSET_MASK)
		ev->flags |= HDRCAP_PKT_F_FRAGMENT;
	return l3 + ihl;
}

/* Fills the IPv6 fields and walks the extension headers; returns the L4
 * offset (ev->ip_proto is the upper-layer protocol), or -1 if malformed. */
static __always_inline int parse_ipv6(struct __sk_buff *skb, int l3, struct hdrcap_packet_event *ev,
				      __u32 *ip_end)
{
	struct ipv6hdr ip;
	__u8 ext[4];
	__u32 first, off;
	__u16 plen;
	__u8 nh;

	if (bpf_skb_load_bytes(skb, l3, &ip, sizeof(ip)))
		return -1;
	if (ip.version != 6)
		return -1;
	first = *(__u32 *)&ip;
	first = bpf_ntohl(first);
	ev->family = AF_INET6;
	ev->ttl = ip.hop_limit;
	ev->dscp = (first >> 22) & 0x3f;
	ev->ecn = (first >> 20) & 3;
	ev->flow_label = first & 0xfffff;
	plen = bpf_ntohs(ip.payload_len);
	ev->ip_total_len = plen ? plen + IPV6_HLEN : 0;
	__builtin_memcpy(ev->saddr, &ip.saddr, 16);
	__builtin_memcpy(ev->daddr, &ip.daddr, 16);
	*ip_end = plen ? l3 + IPV6_HLEN + plen : skb->len;
	nh = ip.nexthdr;
	off = l3 + IPV6_HLEN;
	for (int i = 0; i < IPV6_MAX_EXT_HEADERS; i++) {
		if (nh != IPPROTO_HOPOPTS && nh != IPPROTO_ROUTING && nh != IPPROTO_DSTOPTS &&
		    nh != IPPROTO_FRAGMENT && nh != IPPROTO_AH)
			break;
		if (bpf_skb_load_bytes(skb, off, ext, sizeof(ext)))
			return -1;
		if (nh == IPPROTO_FRAGMENT) {
			if ((((__u16)ext[2] << 8 | ext[3]) & 0xfff8) != 0)
				ev->flags |= HDRCAP_PKT_F_FRAGMENT;
			off += 8;
		} else if (nh == IPPROTO_AH) {
			off += ((__u32)ext[1] + 2) * 4;
		} else {
			off += ((__u32)ext[1] + 1) * 8;
		}
		nh = ext[0];
	}
	ev->ip_proto = nh;
	return off;
}

static __always_inline __u32 proto_bit(__u8 proto)
{
	if (proto == IPPROTO_TCP)
		return HDRCAP_PKT_PROTO_TCP;
	if (proto == IPPROTO_UDP)
		return HDRCAP_PKT_PROTO_UDP;
	return HDRCAP_PKT_PROTO_OTHER;
}

static __always_inline bool cidr_match(const struct hdrcap_packet_event *ev)
{
	if (ev->family == AF_INET) {
		struct hdrcap_cidr4_key k = { .prefixlen = 32 };

		__builtin_memcpy(k.addr, ev->saddr, 4);
		if (bpf_map_lookup_elem(&pkt_cidr4, &k))
			return true;
		__builtin_memcpy(k.addr, ev->daddr, 4);
		return bpf_map_lookup_elem(&pkt_cidr4, &k) != NULL;
	} else {
		struct hdrcap_cidr6_key k = { .prefixlen = 128 };

		__builtin_memcpy(k.addr, ev->saddr, 16);
		if (bpf_map_lookup_elem(&pkt_cidr6, &k))
			return true;
		__builtin_memcpy(k.addr, ev->daddr, 16);
		return bpf_map_lookup_elem(&pkt_cidr6, &k) != NULL;
	}
}

static __always_inline bool filters_pass(const struct hdrcap_packet_config *cfg,
					 const struct hdrcap_packet_event *ev, bool has_ports)
{
	if (cfg->protocols && !(cfg->protocols & proto_bit(ev->ip_proto)))
		return false;
	if (cfg->filter_flags & HDRCAP_PKT_FILTER_PORT) {
		__u16 sport = ev->sport, dport = ev->dport;

		if (!has_ports)
			return false;
		if (!bpf_map_lookup_elem(&pkt_ports, &sport) && !bpf_map_lookup_elem(&pkt_ports, &dport))
			return false;
	}
	if ((cfg->filter_flags & HDRCAP_PKT_FILTER_CIDR) && !cidr_match(ev))
		return false;
	return true;
}

/* One bpf_loop step over the TCP options in s->opts[0 .. opt_len): MSS,
 * window scale, SACK-permitted, SACK and timestamps are recorded; stops at
 * EOL or at the first malformed option. The cursor lives in the map value
 * so the verifier checks this callback once, not once per option. */
static long tcp_option_step(__u32 idx, void *arg)
{
	__u32 zero = 0, off, len;
	struct scratch *s = bpf_map_lookup_elem(&pkt_scratch, &zero);
	struct hdrcap_packet_event *ev;
	__u8 kind, olen;

	if (!s)
		return 1;
	ev = &s->ev;
	off = s->opt_off;
	len = s->opt_len;
	if (off >= len || len > TCP_MAX_OPTION_BYTES)
		return 1;
	kind = s->opts[off & 63];
	if (kind == 0)
		return 1;
	if (kind == 1) {
		s->opt_off = off + 1;
		return 0;
	}
	if (off + 1 >= len)
		return 1;
	olen = s->opts[(off + 1) & 63];
	if (olen < 2 || off + olen > len)
		return 1;
	if (kind == 2 && olen == 4) {
		ev->mss = (__u16)s->opts[(off + 2) & 63] << 8 | s->opts[(off + 3) & 63];
		ev->flags |= HDRCAP_PKT_F_TCP_MSS;
	} else if (kind == 3 && olen == 3) {
		ev->wscale = s->opts[(off + 2) & 63];
		ev->flags |= HDRCAP_PKT_F_TCP_WSCALE;
	} else if (kind == 4 && olen == 2) {
		ev->flags |= HDRCAP_PKT_F_TCP_SACK_PERM;
	} else if (kind == 5) {
		ev->sack_blocks = (olen - 2) / 8;
		ev->flags |= HDRCAP_PKT_F_TCP_SACK;
	} else if (kind == 8 && olen == 10) {
		ev->tsval = (__u32)s->opts[(off + 2) & 63] << 24 | (__u32)s->opts[(off + 3) & 63] << 16 |
			    (__u32)s->opts[(off + 4) & 63] << 8 | s->opts[(off + 5) & 63];
		ev->tsecr = (__u32)s->opts[(off + 6) & 63] << 24 | (__u32)s->opts[(off + 7) & 63] << 16 |
			    (__u32)s->opts[(off + 8) & 63] << 8 | s->opts[(off + 9) & 63];
		ev->flags |= HDRCAP_PKT_F_TCP_TIMESTAMPS;
	}
	s->opt_off = off + olen;
	return 0;
}

static __always_inline int handle(struct __sk_buff *skb, __u8 dir)
{
	__u32 zero = 0, ip_end = 0, payload_off = 0, tcp_opt_len = 0, avail, n;
	struct hdrcap_packet_config *cfg = bpf_map_lookup_elem(&pkt_cfg, &zero);
	struct scratch *s = bpf_map_lookup_elem(&pkt_scratch, &zero);
	struct hdrcap_packet_event *ev;
	struct hdrcap_sock_owner *owner;
	bool has_ports = false;
	__u16 eth_proto = 0;
	int l3, l4;
	long err;

	if (!cfg || !s)
		return TCX_NEXT;
	count(HDRCAP_PKT_CNT_SEEN, 1);
	ev = &s->ev;
	__builtin_memset(ev, 0, offsetof(struct hdrcap_packet_event, payload));

	l3 = l3_offset(skb, &eth_proto);
	if (l3 < 0)
		goto not_ip;
	if (eth_proto == ETH_P_IP)
		l4 = parse_ipv4(skb, l3, ev, &ip_end);
	else
		l4 = parse_ipv6(skb, l3, ev, &ip_end);
	if (l4 < 0)
		goto not_ip;
	if (ip_end > skb->len)
		ip_end = skb->len;

	if (!(ev->flags & HDRCAP_PKT_F_FRAGMENT)) {
		if (ev->ip_proto == IPPROTO_TCP) {
			struct tcphdr th;

			if (bpf_skb_load_bytes(skb, l4, &th, sizeof(th)) == 0 && th.doff >= 5) {
				__u8 *raw = (__u8 *)&th;

				ev->sport = bpf_ntohs(th.source);
				ev->dport = bpf_ntohs(th.dest);
				ev->seq = bpf_ntohl(th.seq);
				ev->ack_seq = bpf_ntohl(th.ack_seq);
				ev->window = bpf_ntohs(th.window);
				ev->tcp_flags = raw[13] | (__u16)(raw[12] & 1) << 8;
				ev->tcp_hdr_len = th.doff * 4;
				tcp_opt_len = ev->tcp_hdr_len - sizeof(th);
				payload_off = l4 + ev->tcp_hdr_len;
				has_ports = true;
			} else {
				ev->flags |= HDRCAP_PKT_F_L4_TRUNCATED;
			}
		} else if (ev->ip_proto == IPPROTO_UDP) {
			struct udphdr uh;

			if (bpf_skb_load_bytes(skb, l4, &uh, sizeof(uh)) == 0) {
				ev->sport = bpf_ntohs(uh.source);
				ev->dport = bpf_ntohs(uh.dest);
				ev->udp_len = bpf_ntohs(uh.len);
				payload_off = l4 + sizeof(uh);
				has_ports = true;
			} else {
				ev->flags |= HDRCAP_PKT_F_L4_TRUNCATED;
			}
		} else {
			payload_off = l4;
		}
	}

	if (!filters_pass(cfg, ev, has_ports)) {
		count(HDRCAP_PKT_CNT_FILTERED, 1);
		return TCX_NEXT;
	}
	count(HDRCAP_PKT_CNT_MATCHED, 1);
	if (cfg->sample_every > 1 && bpf_get_prandom_u32() % cfg->sample_every != 0) {
		count(HDRCAP_PKT_CNT_SAMPLED_OUT, 1);
		return TCX_NEXT;
	}

	if (tcp_opt_len > 0 && tcp_opt_len <= TCP_MAX_OPTION_BYTES) {
		if (bpf_skb_load_bytes(skb, l4 + sizeof(struct tcphdr), s->opts, tcp_opt_len) == 0) {
			s->opt_off = 0;
			s->opt_len = tcp_opt_len;
			bpf_loop(TCP_MAX_OPTION_BYTES, tcp_option_step, NULL, 0);
		}
	}

	ev->ts_boot_ns = bpf_ktime_get_boot_ns();
	ev->ifindex = skb->ifindex;
	ev->skb_len = skb->len;
	ev->direction = dir;
	if (SKB_GSO_PRESENT(skb))
		ev->flags |= HDRCAP_PKT_F_GSO;
	/* Only an egress skb's socket is the local sender's: an ingress skb
	 * may still hold the socket of a sender in another namespace of this
	 * host (veth does not orphan it), which is not this side's process. */
	if (dir == HDRCAP_PKT_DIR_EGRESS) {
		struct bpf_sock *sk = skb->sk;

		ev->socket_cookie = bpf_get_socket_cookie(skb);

		if (sk)
			sk = bpf_sk_fullsock(sk);
		if (sk) {
			/* The socket's address is the join key (a root-only
			 * pointer-to-scalar use): the tracepoints know sockets by
			 * address, and their cookies may not exist yet. */
			__u64 key = (__u64)sk;

			owner = bpf_map_lookup_elem(&sock_owners, &key);
			if (owner) {
				ev->tgid = owner->tgid;
				__builtin_memcpy(ev->comm, owner->comm, sizeof(ev->comm));
			}
		}
	}

	n = 0;
	if (payload_off > 0 && ip_end > payload_off) {
		avail = ip_end - payload_off;
		ev->payload_len = avail;
		n = avail < cfg->payload_bytes ? avail : cfg->payload_bytes;
		if (n > HDRCAP_PKT_PAYLOAD_MAX)
			n = HDRCAP_PKT_PAYLOAD_MAX;
		if (n > 0) {
			/* 1 <= n <= MAX as (n - 1) masked + 1: a form whose bound
			 * survives clang and reaches the verifier on the very
			 * register passed to the helper. */
			__u32 m = n - 1;

			barrier_var(m);
			m &= HDRCAP_PKT_PAYLOAD_MAX - 1;
			n = bpf_skb_load_bytes(skb, payload_off, ev->payload, m + 1) == 0 ? m + 1 : 0;
		}
		/* Without payload capture nothing is missing: it was not asked for. */
		if (cfg->payload_bytes > 0 && n < avail) {
			ev->flags |= HDRCAP_PKT_F_PAYLOAD_TRUNCATED;
			count(HDRCAP_PKT_CNT_PAYLOAD_UNCOPIED, avail - n);
		}
	}
	ev->captured_len = n;
	err = bpf_ringbuf_output(&pkt_events, ev, offsetof(struct hdrcap_packet_event, payload) + n,
				 BPF_RB_NO_WAKEUP);
	count(err ? HDRCAP_PKT_CNT_RINGBUF_FULL : HDRCAP_PKT_CNT_EMITTED, 1);
	return TCX_NEXT;

not_ip:
	count(HDRCAP_PKT_CNT_NOT_IP, 1);
	count(HDRCAP_PKT_CNT_FILTERED, 1);
	return TCX_NEXT;
}

SEC("tc")
int hc_tc_ingress(struct __sk_buff *skb)
{
	return handle(skb, HDRCAP_PKT_DIR_INGRESS);
}

SEC("tc")
int hc_tc_egress(struct __sk_buff *skb)
{
	return handle(skb, HDRCAP_PKT_DIR_EGRESS);
}

/* ---- process identity (optional): socket address -> process ----------- */

/* Context of syscalls:sys_enter_* / sys_exit_* (their tracefs format files). */
struct hc_sys_enter {
	__u64 common;
	__s32 nr;
	__u32 pad;
	__u64 args[6];
};

struct hc_sys_exit {
	__u64 common;
	__s32 nr;
	__u32 pad;
	__s64 ret;
};

#define HC_S_IFMT 00170000
#define HC_S_IFSOCK 0140000
#define HC_TCP_CLOSE 7

/* The struct sock behind a descriptor of the current process, or 0. */
static __always_inline __u64 sock_of_fd(__s64 fd)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds, *f = NULL;
	struct socket *sock;

	if (fd < 0 || (__u64)fd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]) || !f)
		return 0;
	if ((BPF_CORE_READ(f, f_inode, i_mode) & HC_S_IFMT) != HC_S_IFSOCK)
		return 0;
	sock = BPF_CORE_READ(f, private_data);
	return (__u64)BPF_CORE_READ(sock, sk);
}

static __always_inline void remember_owner(__s64 fd)
{
	struct hdrcap_sock_owner owner = {};
	__u64 sk = sock_of_fd(fd);

	if (!sk)
		return;
	owner.tgid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(owner.comm, sizeof(owner.comm));
	bpf_map_update_elem(&sock_owners, &sk, &owner, BPF_ANY);
}

/* The socket exists before connect() runs: remember it at entry. */
SEC("tracepoint/syscalls/sys_enter_connect")
int hc_owner_connect(struct hc_sys_enter *ctx)
{
	remember_owner(ctx->args[0]);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int hc_owner_accept4(struct hc_sys_exit *ctx)
{
	remember_owner(ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept")
int hc_owner_accept(struct hc_sys_exit *ctx)
{
	remember_owner(ctx->ret);
	return 0;
}

/* A closed socket's memory may be reused by the next one: forget it. */
SEC("tracepoint/sock/inet_sock_set_state")
int hc_owner_forget(struct trace_event_raw_inet_sock_set_state *ctx)
{
	__u64 key;

	if (ctx->newstate != HC_TCP_CLOSE)
		return 0;
	key = (__u64)ctx->skaddr;
	bpf_map_delete_elem(&sock_owners, &key);
	return 0;
}
