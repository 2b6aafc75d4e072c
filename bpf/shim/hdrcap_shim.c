// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The few libbpf-adjacent operations that are awkward or slow through FFI:
 *
 *  - draining the ring buffer: one call copies many records, back to back,
 *    into a caller-provided buffer (a JS callback per record would cost more
 *    than the record). The shim is its own BPF ring buffer consumer (the
 *    mmap layout is kernel ABI) so it can stop *before* a record that does
 *    not fit and leave it for the next call; libbpf's consumer always
 *    consumes the record its callback refused.
 *  - summing a per-CPU array,
 *  - routing libbpf's variadic print callback to a plain (level, message)
 *    callback,
 *  - reading CLOCK_BOOTTIME against CLOCK_REALTIME.
 *
 * Output record format: u32 length, u32 zero, then `length` bytes, padded to
 * a multiple of 8 (so u64 fields of the record stay 8-byte aligned).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <linux/bpf.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#define EXPORT __attribute__((visibility("default")))

struct hdrcap_rb {
	int map_fd;
	size_t page_size;
	uint64_t mask;
	unsigned long *consumer_pos;
	unsigned long *producer_pos;
	uint8_t *data;
	size_t data_map_len;
};

EXPORT struct hdrcap_rb *hdrcap_rb_open(int map_fd)
{
	struct bpf_map_info info;
	__u32 info_len = sizeof(info);
	struct hdrcap_rb *rb;
	void *p;
	int err;

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(map_fd, &info, &info_len))
		return NULL;
	if (info.type != BPF_MAP_TYPE_RINGBUF) {
		errno = EINVAL;
		return NULL;
	}
	rb = calloc(1, sizeof(*rb));
	if (!rb)
		return NULL;
	rb->map_fd = map_fd;
	rb->page_size = sysconf(_SC_PAGESIZE);
	rb->mask = info.max_entries - 1;

	p = mmap(NULL, rb->page_size, PROT_READ | PROT_WRITE, MAP_SHARED, map_fd, 0);
	if (p == MAP_FAILED)
		goto fail;
	rb->consumer_pos = p;
	/* Producer page, then the data area once. The kernel offers it twice in
	 * a row so a wrapping record is contiguous, but every page mapped counts
	 * in the agent's RSS (the whole ring is mapped at once): a 16 MiB ring
	 * would show as 32 MiB. The rare record that wraps is copied in two parts. */
	rb->data_map_len = rb->page_size + (size_t)info.max_entries;
	p = mmap(NULL, rb->data_map_len, PROT_READ, MAP_SHARED, map_fd, rb->page_size);
	if (p == MAP_FAILED) {
		err = errno;
		munmap(rb->consumer_pos, rb->page_size);
		errno = err;
		goto fail;
	}
	rb->producer_pos = p;
	rb->data = (uint8_t *)p + rb->page_size;
	return rb;
fail:
	err = errno;
	free(rb);
	errno = err;
	return NULL;
}

EXPORT void hdrcap_rb_close(struct hdrcap_rb *rb)
{
	if (!rb)
		return;
	munmap(rb->producer_pos, rb->data_map_len);
	munmap(rb->consumer_pos, rb->page_size);
	free(rb);
}

/* Bytes the producer has committed or reserved that are not consumed yet. */
EXPORT uint64_t hdrcap_rb_pending(struct hdrcap_rb *rb)
{
	unsigned long prod = __atomic_load_n(rb->producer_pos, __ATOMIC_ACQUIRE);
	unsigned long cons = __atomic_load_n(rb->consumer_pos, __ATOMIC_ACQUIRE);

	return prod - cons;
}

/*
 * Copies ready records into out[0 .. out_len) and consumes them. Stops at the
 * first record still being written, or at the first record that does not
 * fit (it stays for the next call). Returns bytes written (>= 0) and sets
 * *records; -ENOSPC if the very first record cannot fit in out_len at all.
 */
EXPORT int64_t hdrcap_rb_drain(struct hdrcap_rb *rb, uint8_t *out, uint64_t out_len, uint32_t *records)
{
	unsigned long cons = *rb->consumer_pos; /* we are the only consumer */
	unsigned long prod = __atomic_load_n(rb->producer_pos, __ATOMIC_ACQUIRE);
	uint64_t written = 0;
	uint32_t n = 0;
	int64_t ret = 0;

	while (cons < prod) {
		/* Headers are 8-byte aligned in a power-of-two ring: never split. */
		uint32_t *hdr = (uint32_t *)(rb->data + (cons & rb->mask));
		uint32_t len = __atomic_load_n(hdr, __ATOMIC_ACQUIRE);
		uint32_t size = len & ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT);

		if (len & BPF_RINGBUF_BUSY_BIT)
			break;
		if (!(len & BPF_RINGBUF_DISCARD_BIT)) {
			uint64_t need = (8 + (uint64_t)size + 7) & ~7ULL;

			if (written + need > out_len) {
				if (n == 0)
					ret = -ENOSPC;
				break;
			}
			uint64_t from = (cons + BPF_RINGBUF_HDR_SZ) & rb->mask;
			uint64_t first = rb->mask + 1 - from;

			if (first > size)
				first = size;
			((uint32_t *)(out + written))[0] = size;
			((uint32_t *)(out + written))[1] = 0;
			memcpy(out + written + 8, rb->data + from, first);
			if (first < size)
				memcpy(out + written + 8 + first, rb->data, size - first);
			written += need;
			n++;
		}
		cons += (size + BPF_RINGBUF_HDR_SZ + 7) & ~7UL;
	}
	__atomic_store_n(rb->consumer_pos, cons, __ATOMIC_RELEASE);
	if (records)
		*records = n;
	return ret ? ret : (int64_t)written;
}

/* Sums `count` u64 entries of a per-CPU array over all possible CPUs. */
EXPORT int hdrcap_percpu_sum(int map_fd, uint32_t count, uint64_t *out)
{
	int ncpu = libbpf_num_possible_cpus();
	uint64_t *vals;

	if (ncpu < 0)
		return ncpu;
	vals = calloc(ncpu, sizeof(uint64_t));
	if (!vals)
		return -ENOMEM;
	for (uint32_t i = 0; i < count; i++) {
		out[i] = 0;
		if (bpf_map_lookup_elem(map_fd, &i, vals)) {
			int err = -errno;

			free(vals);
			return err;
		}
		for (int c = 0; c < ncpu; c++)
			out[i] += vals[c];
	}
	free(vals);
	return 0;
}

/* ---- libbpf logging ---- */

typedef void (*hdrcap_log_fn)(int level, const char *msg);
static hdrcap_log_fn log_fn;

static int print_to_log_fn(enum libbpf_print_level level, const char *fmt, va_list args)
{
	char buf[1024];

	if (!log_fn)
		return 0;
	vsnprintf(buf, sizeof(buf), fmt, args);
	log_fn((int)level, buf);
	return 0;
}

/* Routes libbpf's messages to fn (level: 0 warn, 1 info, 2 debug); NULL silences them. */
EXPORT void hdrcap_set_log(hdrcap_log_fn fn)
{
	log_fn = fn;
	libbpf_set_print(print_to_log_fn);
}

/* CLOCK_REALTIME - CLOCK_BOOTTIME in ns, sampled between two realtime reads. */
EXPORT int64_t hdrcap_boot_to_wall_offset_ns(void)
{
	struct timespec r1, b, r2;
	int64_t rt1, rt2, bt;

	clock_gettime(CLOCK_REALTIME, &r1);
	clock_gettime(CLOCK_BOOTTIME, &b);
	clock_gettime(CLOCK_REALTIME, &r2);
	rt1 = (int64_t)r1.tv_sec * 1000000000LL + r1.tv_nsec;
	rt2 = (int64_t)r2.tv_sec * 1000000000LL + r2.tv_nsec;
	bt = (int64_t)b.tv_sec * 1000000000LL + b.tv_nsec;
	return rt1 + (rt2 - rt1) / 2 - bt;
}

/* Kernel id of a loaded program (as `bpftool prog show id N` lists it); 0 on error. */
EXPORT uint32_t hdrcap_prog_id(int prog_fd)
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info);

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(prog_fd, &info, &len))
		return 0;
	return info.id;
}
