// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Socket-level HTTP/1.x capture on the raw syscall tracepoints.
 *
 * Owns: tracking TCP sockets (connect/accept/close and first sight), per
 * direction stream offsets, in-kernel HTTP/1.x detection, copying the
 * bytes of HTTP connections into chunk events, and one close notice per
 * HTTP connection when it ends (see bpf/include/hdrcap.h).
 *
 * Every data syscall of every process passes through here, so the order of
 * checks is by cost: config (inlined array access) and process filters
 * first, then the fd -> socket walk, then one hash lookup of the socket's
 * state. Connections seen from their start whose first bytes are not HTTP
 * are marked and skipped after that lookup from then on.
 *
 * Data is handled at syscall exit (arguments saved at entry in task-local
 * storage) so the true byte count is known and offsets stay exact for
 * partial writes and short reads.
 *
 * Hooks: one BTF-typed program on raw_syscalls:sys_enter, one on sys_exit
 * (dispatching on the syscall number) and one on sock:inet_sock_set_state.
 * Not one syscalls:sys_{enter,exit}_* program per syscall: each of those is
 * a perf event whose release waits for RCU grace periods under a global
 * mutex (measured 2026-11-25 with libbpf 1.1 links: 23 of them detach in
 * 1.5-1.7 s), while the two raw tracepoint links detach in under 4 ms. Syscalls the switch does not name return
 * after one compare chain, which is what the per-syscall tracepoints'
 * bitmap check cost too. x86-64 only (syscall numbers, pt_regs).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_tracing.h>
#include "hdrcap.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_INET 2
#define AF_INET6 10
#define SOCK_STREAM 1
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define EINPROGRESS 115
#define MSG_PEEK 2
#define TCP_CLOSE_STATE 7
/* thread_info.status bit of a 32-bit (ia32) syscall: its numbers differ. */
#define TS_COMPAT 0x0002

/* x86-64 syscall numbers (arch/x86/entry/syscalls/syscall_64.tbl). */
enum hdrcap_sysnr {
	NR_read = 0,
	NR_write = 1,
	NR_close = 3,
	NR_readv = 19,
	NR_writev = 20,
	NR_sendfile = 40,
	NR_connect = 42,
	NR_accept = 43,
	NR_sendto = 44,
	NR_recvfrom = 45,
	NR_sendmsg = 46,
	NR_recvmsg = 47,
	NR_accept4 = 288,
};

/* Keep the enums in the object's BTF: the TS layout is generated from it. */
enum hdrcap_limits hdrcap_btf_limits __attribute__((unused));
enum hdrcap_direction hdrcap_btf_direction __attribute__((unused));
enum hdrcap_role hdrcap_btf_role __attribute__((unused));
enum hdrcap_chunk_flags hdrcap_btf_chunk_flags __attribute__((unused));
enum hdrcap_filter_flags hdrcap_btf_filter_flags __attribute__((unused));
enum hdrcap_port_side hdrcap_btf_port_side __attribute__((unused));
enum hdrcap_counter hdrcap_btf_counter __attribute__((unused));
struct hdrcap_chunk_event *hdrcap_btf_chunk_event __attribute__((unused));
struct hdrcap_port_key *hdrcap_btf_port_key __attribute__((unused));

enum conn_class {
	CONN_UNCLASSIFIED = 0,
	CONN_HTTP = 1,
	CONN_NOT_HTTP = 2,
};

struct conn_state {
	__u64 conn_id;
	__u64 offset[2];        /* next stream offset per direction */
	__u32 filter_gen;       /* config generation the verdict below is for */
	__u8 filter_pass;
	__u8 role;
	__u8 class;             /* enum conn_class */
	__u8 from_start;        /* offsets count from the first byte of the connection */
};

enum args_kind {
	ARGS_BUF = 1,
	ARGS_IOV = 2,
	ARGS_SENDFILE = 3,
	ARGS_CONNECT = 4,
};

/* A data syscall's arguments, saved at entry for its exit. */
struct syscall_args {
	__u64 sk;
	__s64 sysnr;            /* the exit must belong to the same syscall */
	__u64 buf;              /* data buffer, or iovec array for ARGS_IOV */
	__u32 iovcnt;
	__s32 fd;
	__u8 kind;
	__u8 dir;
};

struct copy_ctx {
	__u64 iov;              /* user iovec array; 0 for a plain buffer */
	__u64 seg_ptr;          /* next byte to copy in the current segment */
	__u64 base;             /* stream offset of the syscall's first byte */
	__u32 seg_left;
	__u32 seg_idx;
	__u32 seg_cnt;
	__u32 total;            /* bytes the syscall carried */
	__u32 cap_left;         /* capture budget left */
	__u32 consumed;         /* syscall bytes walked so far */
	__u32 pos;              /* bytes staged in the current chunk */
	__u32 chunk_start;      /* syscall-relative offset of the current chunk */
	__u32 first_flags;      /* flags of the chunk at syscall offset 0 */
};

/* Per-CPU staging area for one chunk event. The spill area only exists so
 * the verifier can see that data[pos .. pos + n) with pos < CHUNK_MAX and
 * n < 2 * CHUNK_MAX stays inside the value. It is a plain array indexed by CPU
 * because per-CPU map values are limited to 32 KiB; userspace sizes it to
 * the number of possible CPUs before load. */
struct scratch {
	struct copy_ctx cx;
	struct hdrcap_chunk_event ev;
	__u8 spill[2 * HDRCAP_CHUNK_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hdrcap_config);
} hdrcap_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HDRCAP_FILTER_SET_MAX);
	__type(key, __u32);
	__type(value, __u8);
} filter_tgids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HDRCAP_FILTER_SET_MAX);
	__type(key, __u64);
	__type(value, __u8);
} filter_cgroups SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HDRCAP_FILTER_SET_MAX);
	__type(key, struct hdrcap_port_key);
	__type(value, __u8);
} filter_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);     /* struct sock * */
	__type(value, struct conn_state);
} conns SEC(".maps");

/* A thread's syscall in flight, from entry to exit. Task-local storage:
 * found from the task pointer without hashing, freed with the thread, and
 * "deleted" by clearing `kind` instead of a map update per syscall. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct syscall_args);
} inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, HDRCAP_CNT__COUNT);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch_buf SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024); /* userspace may resize before load */
} events SEC(".maps");

__u64 conn_seq = 0;

static __always_inline void count(__u32 idx, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);

	if (v)
		*v += n;
}

static __always_inline struct scratch *get_scratch(void)
{
	__u32 cpu = bpf_get_smp_processor_id();

	return bpf_map_lookup_elem(&scratch_buf, &cpu);
}

static __always_inline struct hdrcap_config *get_config(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&hdrcap_cfg, &zero);
}

static __always_inline void inflight_save(const struct syscall_args *args)
{
	struct syscall_args *slot = bpf_task_storage_get(&inflight, bpf_get_current_task_btf(), 0,
							 BPF_LOCAL_STORAGE_GET_F_CREATE);

	if (slot)
		*slot = *args;
}

/* The current thread's saved syscall, taken (cleared) so it is used once. */
static __always_inline bool inflight_take(struct syscall_args *out)
{
	struct syscall_args *slot = bpf_task_storage_get(&inflight, bpf_get_current_task_btf(), 0, 0);

	if (!slot || !slot->kind)
		return false;
	*out = *slot;
	slot->kind = 0;
	return true;
}

static __always_inline bool process_allowed(const struct hdrcap_config *cfg, __u64 pid_tgid)
{
	__u32 flags = cfg->filter_flags;

	if (!(flags & (HDRCAP_FILTER_TGID | HDRCAP_FILTER_CGROUP | HDRCAP_FILTER_COMM)))
		return true;
	if (flags & HDRCAP_FILTER_TGID) {
		__u32 tgid = pid_tgid >> 32;

		if (!bpf_map_lookup_elem(&filter_tgids, &tgid))
			return false;
	}
	if (flags & HDRCAP_FILTER_CGROUP) {
		__u64 cg = bpf_get_current_cgroup_id();

		if (!bpf_map_lookup_elem(&filter_cgroups, &cg))
			return false;
	}
	if (flags & HDRCAP_FILTER_COMM) {
		char comm[HDRCAP_COMM_LEN] = {};
		__u32 n = cfg->comm_prefix_len;

		bpf_get_current_comm(comm, sizeof(comm));
		for (__u32 i = 0; i < HDRCAP_COMM_LEN; i++) {
			if (i >= n)
				break;
			if (comm[i] != cfg->comm_prefix[i])
				return false;
		}
	}
	return true;
}

/*
 * Kernel structs are read with direct loads through BTF-typed pointers (the
 * verifier turns them into exception-handled loads, a few ns each) rather
 * than BPF_CORE_READ's one bpf_probe_read_kernel() helper call per field:
 * this walk runs on every data syscall of every process. bpf_rdonly_cast()
 * (inlined by the verifier) types a raw pointer for such loads.
 */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;

#define AS_KERNEL(type, ptr) ((type *)bpf_rdonly_cast((void *)(ptr), bpf_core_type_id_kernel(type)))

static __always_inline struct file *file_from_fd(int fd)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct files_struct *files;
	struct fdtable *fdt;
	struct file **fds;
	struct file *f = NULL;

	if (fd < 0)
		return NULL;
	files = task->files;
	if (!files)
		return NULL;
	fdt = AS_KERNEL(struct fdtable, files->fdt);
	if ((__u32)fd >= fdt->max_fds)
		return NULL;
	fds = fdt->fd;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

/* The struct sock behind a file if it is an AF_INET/AF_INET6 TCP socket. */
static __always_inline struct sock *tcp_sock_from_file(struct file *raw)
{
	struct file *f;
	struct socket *sock;
	struct sock *sk;
	struct inode *inode;
	__u16 family;

	if (!raw)
		return NULL;
	f = AS_KERNEL(struct file, raw);
	inode = f->f_inode;
	if (!inode || (inode->i_mode & S_IFMT) != S_IFSOCK)
		return NULL;
	sock = AS_KERNEL(struct socket, f->private_data);
	if (!sock || sock->type != SOCK_STREAM)
		return NULL;
	sk = sock->sk;
	if (!sk)
		return NULL;
	family = sk->__sk_common.skc_family;
	if (family != AF_INET && family != AF_INET6)
		return NULL;
	if (sk->sk_protocol != IPPROTO_TCP)
		return NULL;
	return sk;
}

static __always_inline struct sock *tcp_sock_from_fd(int fd)
{
	return tcp_sock_from_file(file_from_fd(fd));
}

static __always_inline void read_ports(struct sock *raw, __u16 *local, __u16 *remote)
{
	struct sock *sk = AS_KERNEL(struct sock, raw);

	*local = sk->__sk_common.skc_num;
	*remote = bpf_ntohs(sk->__sk_common.skc_dport);
}

static __always_inline bool port_in(__u16 port, __u16 side)
{
	struct hdrcap_port_key k = { .port = port, .side = side };

	return bpf_map_lookup_elem(&filter_ports, &k) != NULL;
}

static __always_inline bool conn_filter_pass(struct conn_state *c, struct sock *sk,
					     const struct hdrcap_config *cfg)
{
	__u32 flags = cfg->filter_flags;
	__u16 lport, rport;
	bool pass = true;

	if (c->filter_gen == cfg->generation)
		return c->filter_pass;
	if (cfg->role != HDRCAP_ROLE_UNKNOWN && cfg->role != c->role)
		pass = false;
	if (pass && (flags & (HDRCAP_FILTER_PORT_ANY | HDRCAP_FILTER_PORT_LOCAL |
			      HDRCAP_FILTER_PORT_REMOTE))) {
		read_ports(sk, &lport, &rport);
		if ((flags & HDRCAP_FILTER_PORT_ANY) &&
		    !port_in(lport, HDRCAP_PORT_ANY) && !port_in(rport, HDRCAP_PORT_ANY))
			pass = false;
		if ((flags & HDRCAP_FILTER_PORT_LOCAL) && !port_in(lport, HDRCAP_PORT_LOCAL))
			pass = false;
		if ((flags & HDRCAP_FILTER_PORT_REMOTE) && !port_in(rport, HDRCAP_PORT_REMOTE))
			pass = false;
	}
	c->filter_pass = pass;
	c->filter_gen = cfg->generation;
	return pass;
}

/* Start tracking a socket; `fresh` replaces any state (a new connection on
 * a recycled struct sock), otherwise an existing state wins. */
static __always_inline struct conn_state *conn_track(struct sock *sk, __u8 role, bool fresh,
						     const struct hdrcap_config *cfg)
{
	__u64 key = (__u64)sk;
	struct conn_state init = {};
	struct conn_state *c;

	if (!fresh) {
		c = bpf_map_lookup_elem(&conns, &key);
		if (c)
			return c;
	}
	init.conn_id = cfg->conn_id_base + __sync_fetch_and_add(&conn_seq, 1);
	init.role = role;
	init.from_start = fresh;
	bpf_map_update_elem(&conns, &key, &init, fresh ? BPF_ANY : BPF_NOEXIST);
	count(HDRCAP_CNT_CONNS_TRACKED, 1);
	return bpf_map_lookup_elem(&conns, &key);
}

/* ---- data syscalls: entry ---------------------------------------------- */

static __always_inline int enter_data(long nr, int fd, __u64 buf, __u32 iovcnt, __u8 kind, __u8 dir)
{
	struct hdrcap_config *cfg = get_config();
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct syscall_args args = {};
	struct conn_state *c;
	struct sock *sk;

	if (!cfg || !process_allowed(cfg, pid_tgid))
		return 0;
	sk = tcp_sock_from_fd(fd);
	if (!sk)
		return 0;
	c = conn_track(sk, HDRCAP_ROLE_UNKNOWN, false, cfg);
	if (!c || c->class == CONN_NOT_HTTP || !conn_filter_pass(c, sk, cfg))
		return 0;
	args.sk = (__u64)sk;
	args.sysnr = nr;
	args.buf = buf;
	args.iovcnt = iovcnt;
	args.fd = fd;
	args.kind = kind;
	args.dir = dir;
	inflight_save(&args);
	return 0;
}

/* The iovec array and count of a user msghdr. */
static __always_inline __u64 msg_iov(__u64 msg, __u32 *iovcnt)
{
	struct user_msghdr *m = (struct user_msghdr *)msg;
	__u64 iovlen = BPF_CORE_READ_USER(m, msg_iovlen);

	*iovcnt = iovlen > 0xffff ? 0xffff : (__u32)iovlen;
	return (__u64)BPF_CORE_READ_USER(m, msg_iov);
}

/* A 32-bit process's syscall: its numbers are not the ones below. */
static __always_inline bool compat_syscall(void)
{
	struct task_struct *task = bpf_get_current_task_btf();

	return task->thread_info.status & TS_COMPAT;
}

static __always_inline int enter_connect(long nr, int fd);
static __always_inline int enter_close(int fd);

SEC("tp_btf/sys_enter")
int BPF_PROG(hc_sys_enter, struct pt_regs *regs, long id)
{
	__u64 buf = 0, a2;
	__u32 iovcnt = 0;
	__u8 kind, dir;
	int fd;

	/* Every syscall of the system comes here: leave at once unless it is one of ours. */
	switch (id) {
	case NR_read: case NR_write: case NR_readv: case NR_writev: case NR_recvfrom:
	case NR_sendto: case NR_recvmsg: case NR_sendmsg: case NR_sendfile:
	case NR_connect: case NR_close:
		break;
	default:
		return 0;
	}
	if (compat_syscall())
		return 0;
	fd = regs->di;
	switch (id) {
	case NR_connect:
		return enter_connect(id, fd);
	case NR_close:
		return enter_close(fd);
	case NR_sendfile:
		return enter_data(id, fd, 0, 0, ARGS_SENDFILE, HDRCAP_DIR_EGRESS);
	}
	buf = regs->si;
	a2 = regs->dx;
	dir = (id == NR_read || id == NR_readv || id == NR_recvfrom || id == NR_recvmsg) ?
		      HDRCAP_DIR_INGRESS : HDRCAP_DIR_EGRESS;
	kind = ARGS_BUF;
	switch (id) {
	case NR_recvfrom:
		/* MSG_PEEK leaves the bytes in the socket: they are read again later. */
		if (regs->r10 & MSG_PEEK)
			return 0;
		break;
	case NR_readv:
	case NR_writev:
		kind = ARGS_IOV;
		iovcnt = a2 > 0xffff ? 0xffff : (__u32)a2;
		break;
	case NR_recvmsg:
	case NR_sendmsg:
		if (id == NR_recvmsg && (a2 & MSG_PEEK))
			return 0;
		kind = ARGS_IOV;
		buf = msg_iov(buf, &iovcnt);
		break;
	}
	return enter_data(id, fd, buf, iovcnt, kind, dir);
}


/* ---- data syscalls: exit ----------------------------------------------- */

static __always_inline __u64 token(const char *s, __u32 n)
{
	__u64 v = 0;

	for (__u32 i = 0; i < n; i++)
		v |= (__u64)(__u8)s[i] << (8 * i);
	return v;
}

/* The first `avail` (<= 8) bytes, loaded little-endian into v, start with
 * an HTTP/1.x request method and a space, or with "HTTP/1.". */
static __always_inline bool is_http_start(__u64 v, __u32 avail)
{
#define TOK(s) (avail >= sizeof(s) - 1 && \
		(v & (~0ULL >> (64 - 8 * (sizeof(s) - 1)))) == token(s, sizeof(s) - 1))
	return TOK("GET ") || TOK("POST ") || TOK("PUT ") || TOK("HTTP/1.") ||
	       TOK("HEAD ") || TOK("DELETE ") || TOK("OPTIONS ") || TOK("PATCH ") ||
	       TOK("CONNECT ") || TOK("TRACE ");
#undef TOK
}

/* Up to the first 8 bytes of the syscall's data (first iovec only). */
static __always_inline __u32 peek_start(const struct syscall_args *a, __u32 total, __u64 *v)
{
	__u64 ptr = a->buf;
	__u64 len = total;

	if (a->kind == ARGS_IOV) {
		struct iovec iov;

		if (a->iovcnt == 0 || bpf_probe_read_user(&iov, sizeof(iov), (void *)a->buf))
			return 0;
		ptr = (__u64)iov.iov_base;
		if (iov.iov_len < len)
			len = iov.iov_len;
	}
	if (len > 8)
		len = 8;
	if (len == 0 || bpf_probe_read_user(v, len, (void *)ptr))
		return 0;
	return len;
}


static __always_inline void emit_chunk(struct scratch *s, __u32 length)
{
	struct copy_ctx *cx = &s->cx;
	__u32 n = cx->pos;
	long err;

	if (n > HDRCAP_CHUNK_MAX)
		n = HDRCAP_CHUNK_MAX;
	s->ev.stream_offset = cx->base + cx->chunk_start;
	s->ev.length = length;
	s->ev.data_len = n;
	s->ev.flags = (cx->chunk_start == 0 ? cx->first_flags : 0) |
		      (length > n ? HDRCAP_CHUNK_F_TRUNCATED : 0);
	err = bpf_ringbuf_output(&events, &s->ev, offsetof(struct hdrcap_chunk_event, data) + n,
				 BPF_RB_NO_WAKEUP);
	count(err ? HDRCAP_CNT_RINGBUF_FULL : HDRCAP_CNT_CHUNKS_EMITTED, 1);
	cx->chunk_start += n;
	cx->pos = 0;
}

/* One bpf_loop step: copy as much of the current segment as fits in the
 * current chunk and the capture budget, moving to the next iovec first if
 * the segment is done. Each step finishes a segment or fills a chunk. */
static long copy_step(__u32 idx, void *arg)
{
	struct scratch *s = get_scratch();
	struct copy_ctx *cx;
	__u32 n, pos;
	__u64 size;

	if (!s)
		return 1;
	cx = &s->cx;
	if (cx->cap_left == 0 || cx->consumed >= cx->total)
		return 1;
	if (cx->seg_left == 0) {
		struct iovec iov;

		if (!cx->iov || cx->seg_idx >= cx->seg_cnt || cx->seg_idx >= HDRCAP_MAX_IOV)
			return 1;
		if (bpf_probe_read_user(&iov, sizeof(iov),
					(void *)(cx->iov + cx->seg_idx * sizeof(iov)))) {
			count(HDRCAP_CNT_READ_ERRORS, 1);
			return 1;
		}
		cx->seg_idx++;
		cx->seg_ptr = (__u64)iov.iov_base;
		n = cx->total - cx->consumed;
		cx->seg_left = iov.iov_len < n ? iov.iov_len : n;
		if (cx->seg_left == 0)
			return 0;
	}
	pos = cx->pos;
	if (pos >= HDRCAP_CHUNK_MAX)
		return 1;
	n = cx->seg_left;
	if (n > HDRCAP_CHUNK_MAX - pos)
		n = HDRCAP_CHUNK_MAX - pos;
	if (n > cx->cap_left)
		n = cx->cap_left;
	/* n <= CHUNK_MAX - pos already; the barrier hides that from clang so
	 * the mask survives and gives the verifier a bound on the very register
	 * passed to the helper (the spill area absorbs pos + n). */
	size = n;
	barrier_var(size);
	size &= 2 * HDRCAP_CHUNK_MAX - 1;
	if (bpf_probe_read_user(&s->ev.data[pos & (HDRCAP_CHUNK_MAX - 1)], size, (void *)cx->seg_ptr)) {
		/* Unreadable (e.g. not faulted in): leave the rest as a gap. */
		count(HDRCAP_CNT_READ_ERRORS, 1);
		return 1;
	}
	cx->pos += n;
	cx->seg_ptr += n;
	cx->seg_left -= n;
	cx->cap_left -= n;
	cx->consumed += n;
	/* A full chunk with more to come goes out now; the last one goes out
	 * after the loop, covering the uncopied tail too. */
	if (cx->pos == HDRCAP_CHUNK_MAX && cx->cap_left > 0 && cx->consumed < cx->total)
		emit_chunk(s, HDRCAP_CHUNK_MAX);
	return 0;
}

/* Addresses with direct loads too (no helper call): this runs for every chunk. */
static __always_inline void fill_endpoints(struct hdrcap_chunk_event *ev, struct sock *raw)
{
	struct sock *sk = AS_KERNEL(struct sock, raw);
	__u16 family = sk->__sk_common.skc_family;
	__u32 *local = (__u32 *)ev->local_addr;
	__u32 *remote = (__u32 *)ev->remote_addr;

	ev->family = family;
	read_ports(raw, &ev->local_port, &ev->remote_port);
	__builtin_memset(ev->local_addr, 0, sizeof(ev->local_addr));
	__builtin_memset(ev->remote_addr, 0, sizeof(ev->remote_addr));
	if (family == AF_INET) {
		local[0] = sk->__sk_common.skc_rcv_saddr;
		remote[0] = sk->__sk_common.skc_daddr;
	} else {
		for (int i = 0; i < 4; i++) {
			local[i] = sk->__sk_common.skc_v6_rcv_saddr.in6_u.u6_addr32[i];
			remote[i] = sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[i];
		}
	}
}

static __always_inline int handle_data(const struct syscall_args *a, __u32 total, __u64 pid_tgid)
{
	struct hdrcap_config *cfg = get_config();
	struct conn_state *c = bpf_map_lookup_elem(&conns, &a->sk);
	struct copy_ctx *cx;
	struct scratch *s;
	__u32 cap, first_flags = 0, avail;
	__u64 base, head = 0;
	bool start;

	if (!c || !cfg)
		return 0;
	base = __sync_fetch_and_add(&c->offset[a->dir & 1], total);
	count(HDRCAP_CNT_SYSCALLS_SEEN, 1);
	if (a->kind == ARGS_SENDFILE) {
		/* Body bytes from a file: only the offset moves. */
		if (c->class == CONN_HTTP)
			count(HDRCAP_CNT_BYTES_UNCOPIED, total);
		return 0;
	}
	avail = peek_start(a, total, &head);
	start = is_http_start(head, avail);
	if (c->class != CONN_HTTP) {
		if (!start) {
			/* Seen from its first byte and it is not HTTP: never look again. */
			if (c->from_start && base == 0 && c->class == CONN_UNCLASSIFIED) {
				c->class = CONN_NOT_HTTP;
				count(HDRCAP_CNT_CONNS_NOT_HTTP, 1);
			}
			return 0;
		}
		c->class = CONN_HTTP;
		count(HDRCAP_CNT_CONNS_HTTP, 1);
	}
	if (start)
		first_flags = HDRCAP_CHUNK_F_HTTP_START;

	s = get_scratch();
	if (!s)
		return 0;
	s->ev.ts_boot_ns = bpf_ktime_get_boot_ns();
	s->ev.conn_id = c->conn_id;
	s->ev.cgroup_id = bpf_get_current_cgroup_id();
	s->ev.pid = (__u32)pid_tgid;
	s->ev.tgid = pid_tgid >> 32;
	s->ev.direction = a->dir;
	s->ev.role = c->role;
	s->ev.syscall_len = total;
	bpf_get_current_comm(s->ev.comm, sizeof(s->ev.comm));
	fill_endpoints(&s->ev, (struct sock *)a->sk);

	cap = cfg->capture_len;
	if (cap == 0)
		cap = HDRCAP_CAPTURE_DEFAULT;
	if (cap > HDRCAP_CAPTURE_MAX)
		cap = HDRCAP_CAPTURE_MAX;
	/* The copy state lives in the map value, not on the stack: the verifier
	 * then sees unknown scalars instead of exact values per iteration and
	 * can prune the bpf_loop callback's states. */
	cx = &s->cx;
	__builtin_memset(cx, 0, sizeof(*cx));
	cx->base = base;
	cx->total = total;
	cx->cap_left = cap;
	cx->first_flags = first_flags;
	if (a->kind == ARGS_IOV) {
		cx->iov = a->buf;
		cx->seg_cnt = a->iovcnt;
	} else {
		cx->seg_ptr = a->buf;
		cx->seg_left = total;
	}
	bpf_loop(HDRCAP_MAX_IOV + HDRCAP_CAPTURE_MAX / HDRCAP_CHUNK_MAX + 4, copy_step, NULL, 0);
	s = get_scratch();
	if (!s)
		return 0;
	cx = &s->cx;
	/* The last chunk carries the uncopied tail in its length (a chunk
	 * with no data if the tail starts exactly at a chunk boundary). */
	if (cx->pos > 0 || cx->chunk_start < total)
		emit_chunk(s, total - cx->chunk_start);
	if (cx->consumed < total) {
		count(HDRCAP_CNT_BYTES_UNCOPIED, total - cx->consumed);
		if (start)
			count(HDRCAP_CNT_TRUNCATED, 1);
	}
	return 0;
}

static __always_inline int exit_data(long nr, long ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct syscall_args a;

	if (!inflight_take(&a))
		return 0;
	if (ret <= 0 || a.sysnr != nr || a.kind == ARGS_CONNECT)
		return 0;
	return handle_data(&a, ret > 0x7fffffff ? 0x7fffffff : (__u32)ret, pid_tgid);
}

static __always_inline int exit_connect(long nr, long ret);
static __always_inline int exit_accept(long ret);

SEC("tp_btf/sys_exit")
int BPF_PROG(hc_sys_exit, struct pt_regs *regs, long ret)
{
	long id = regs->orig_ax;

	switch (id) {
	case NR_read: case NR_write: case NR_readv: case NR_writev: case NR_recvfrom:
	case NR_sendto: case NR_recvmsg: case NR_sendmsg: case NR_sendfile:
	case NR_connect: case NR_accept: case NR_accept4:
		break;
	default:
		return 0;
	}
	if (compat_syscall())
		return 0;
	if (id == NR_connect)
		return exit_connect(id, ret);
	if (id == NR_accept || id == NR_accept4)
		return exit_accept(ret);
	return exit_data(id, ret);
}

/* ---- connection lifecycle ---------------------------------------------- */

static __always_inline int enter_connect(long nr, int fd)
{
	struct hdrcap_config *cfg = get_config();
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct syscall_args args = {};

	if (!cfg || !process_allowed(cfg, pid_tgid))
		return 0;
	args.sysnr = nr;
	args.fd = fd;
	args.kind = ARGS_CONNECT;
	inflight_save(&args);
	return 0;
}

static __always_inline int exit_connect(long nr, long ret)
{
	struct hdrcap_config *cfg = get_config();
	struct syscall_args a;
	struct sock *sk;
	int fd;

	if (!inflight_take(&a))
		return 0;
	fd = a.fd;
	if (a.kind != ARGS_CONNECT || a.sysnr != nr)
		return 0;
	if (!cfg || (ret != 0 && ret != -EINPROGRESS))
		return 0;
	sk = tcp_sock_from_fd(fd);
	if (sk)
		conn_track(sk, HDRCAP_ROLE_CLIENT, true, cfg);
	return 0;
}

static __always_inline int exit_accept(long ret)
{
	struct hdrcap_config *cfg = get_config();
	struct sock *sk;

	if (ret < 0 || !cfg || !process_allowed(cfg, bpf_get_current_pid_tgid()))
		return 0;
	sk = tcp_sock_from_fd(ret);
	if (sk)
		conn_track(sk, HDRCAP_ROLE_SERVER, true, cfg);
	return 0;
}

/* The close notice (a record with length 0, see hdrcap.h): userspace drops
 * the connection's decoder state now rather than after an idle timeout. */
static __always_inline void emit_close(struct conn_state *c, struct sock *sk)
{
	struct hdrcap_config *cfg = get_config();
	struct hdrcap_chunk_event *ev;

	if (c->class != CONN_HTTP || !cfg || c->filter_gen != cfg->generation || !c->filter_pass)
		return;
	ev = bpf_ringbuf_reserve(&events, offsetof(struct hdrcap_chunk_event, data), 0);
	if (!ev) {
		count(HDRCAP_CNT_RINGBUF_FULL, 1);
		return;
	}
	__builtin_memset(ev, 0, offsetof(struct hdrcap_chunk_event, data));
	ev->ts_boot_ns = bpf_ktime_get_boot_ns();
	ev->conn_id = c->conn_id;
	ev->role = c->role;
	fill_endpoints(ev, sk);
	bpf_ringbuf_submit(ev, BPF_RB_NO_WAKEUP);
}

/* struct file before 6.13 counted references in f_count. */
struct file___f_count {
	atomic_long_t f_count;
} __attribute__((preserve_access_index));

/* Is the fd being closed the last reference to the file? Sockets shared by
 * dup() or fork() live on after one close. */
static __always_inline bool file_last_ref(struct file *f)
{
	if (bpf_core_field_exists(f->f_ref))
		/* file_ref_t stores references - 1. */
		return BPF_CORE_READ(f, f_ref.refcnt.counter) == 0;
	return BPF_CORE_READ((struct file___f_count *)f, f_count.counter) == 1;
}

static __always_inline int enter_close(int fd)
{
	struct hdrcap_config *cfg = get_config();
	struct conn_state *c;
	struct file *f;
	struct sock *sk;
	__u64 key;

	if (!cfg || !process_allowed(cfg, bpf_get_current_pid_tgid()))
		return 0;
	f = file_from_fd(fd);
	sk = tcp_sock_from_file(f);
	if (!sk)
		return 0;
	key = (__u64)sk;
	c = bpf_map_lookup_elem(&conns, &key);
	if (c && file_last_ref(f)) {
		emit_close(c, sk);
		bpf_map_delete_elem(&conns, &key);
	}
	return 0;
}

/* The TCP state machine is the authority on a socket's end: whatever
 * close() saw, a socket reaching TCP_CLOSE is gone, and its struct sock may
 * be recycled for the next connection. */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(hc_sock_state, const struct sock *sk, const int oldstate, const int newstate)
{
	struct conn_state *c;
	__u64 key;

	if (newstate != TCP_CLOSE_STATE || sk->sk_protocol != IPPROTO_TCP)
		return 0;
	key = (__u64)sk;
	c = bpf_map_lookup_elem(&conns, &key);
	if (!c)
		return 0;
	emit_close(c, (struct sock *)sk);
	bpf_map_delete_elem(&conns, &key);
	return 0;
}
