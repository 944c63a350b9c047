/* SPDX-License-Identifier: MIT */
/*
 * Dirty logging for live migration, the vhost-user side: the front-end's
 * bitmap (SET_LOG_BASE with LOG_SHMFD, SET_LOG_FD), and the sink each
 * running queue logs through while VHOST_F_LOG_ALL is agreed. A bit is set
 * with an atomic OR on its byte, because the front-end reads and clears
 * the bitmap while we write it. Never maps a bitmap it has not checked,
 * never writes outside it, and never lets a queue run unlogged while the
 * front-end asked for logging.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend_internal.h"
#include "socket.h"

/* Largest bitmap accepted: 1 GiB covers 32 TiB of guest memory. */
#define VHU_LOG_MAX_BYTES (1ull << 30)

static bool logging_on(const struct vio_vhu_backend *b)
{
	return (b->features >> VHOST_F_LOG_ALL) & 1;
}

/* The sink: set the bit of every 4 KiB page that [gpa, gpa + len) touches. */
static void log_write(void *opaque, uint64_t gpa, uint64_t len)
{
	struct vhu_log *l = opaque;
	uint64_t page = gpa / VHOST_LOG_PAGE;
	uint64_t last = (gpa + len - 1) / VHOST_LOG_PAGE;
	uint64_t end = l->bytes * 8;

	if (gpa + len - 1 < gpa || last >= end) {
		if (!atomic_exchange(&l->outside_warned, true))
			vio_warn(l->owner, "dirty log: write at 0x%llx+%llu beyond the %llu-byte "
				 "bitmap (not logged)", (unsigned long long)gpa,
				 (unsigned long long)len, (unsigned long long)l->bytes);
		if (page >= end || gpa + len - 1 < gpa)
			return;
		last = end - 1;
	}
	for (; page <= last; page++) {
		/* Whole bytes at once inside a long range. */
		if (page % 8 == 0 && last - page >= 7) {
			__atomic_fetch_or(&l->bits[page / 8], (uint8_t)0xff, __ATOMIC_RELAXED);
			page += 7;
			continue;
		}
		__atomic_fetch_or(&l->bits[page / 8], (uint8_t)(1u << (page % 8)), __ATOMIC_RELAXED);
	}
}

bool vhu_log_ready(const struct vio_vhu_backend *b)
{
	return !logging_on(b) || b->log.bits != NULL;
}

void vhu_log_queue_apply(struct vio_vhu_backend *b, struct vhu_queue *q)
{
	const struct vio_vhu_vring_addr *a = &q->addr;
	bool packed = (b->features >> VIRTIO_F_RING_PACKED) & 1;
	uint64_t dev_gpa = 0;

	if (!q->vq)
		return;
	if (!logging_on(b) || !b->log.bits) {
		vio_virtq_set_dirty_log(q->vq, NULL);
		return;
	}
	q->dlog = (struct vio_dirty_log){
		.write = log_write, .opaque = &b->log, .gpa_map = &b->mem,
		.log_ring = (a->flags >> VHOST_VRING_F_LOG) & 1,
		.ring_gpa = a->log_guest_addr,
	};
	/*
	 * Packed rings write used descriptors into the descriptor ring and
	 * their suppression flags into the device area: log both where they
	 * are in guest memory (the ring was set up from these addresses).
	 */
	if (packed && q->dlog.log_ring &&
	    (vhu_uaddr_to_gpa(b, a->desc_user_addr, 16ull * q->num, &q->dlog.desc_gpa) ||
	     vhu_uaddr_to_gpa(b, a->used_user_addr, 4, &dev_gpa)))
		q->dlog.log_ring = false;
	if (packed)
		q->dlog.ring_gpa = dev_gpa;
	vio_virtq_set_dirty_log(q->vq, &q->dlog);
}

void vhu_log_drop(struct vio_vhu_backend *b)
{
	vhu_region_unmap(&b->log.reg);
	b->log.bits = NULL;
	b->log.bytes = 0;
	vhu_close_fd(&b->log.fd);
}

/*
 * SET_LOG_BASE: map the bitmap the fd carries. The front-end waits for an
 * answer whatever the outcome; a bitmap we cannot use is refused by
 * dropping the front-end, since an answer would read as success and
 * migration would go on with pages missing.
 */
enum vhu_result h_set_log_base(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	const struct vio_vhu_log *d = &m->p.log;
	struct vhu_region reg = { 0 };
	struct stat st;
	int fd = m->fds[0];
	void *p;

	if (!((b->protocol >> VHOST_USER_PROTOCOL_F_LOG_SHMFD) & 1)) {
		vio_warn(b->name, "SET_LOG_BASE without LOG_SHMFD agreed");
		return VHU_DISCONNECT;
	}
	if (d->mmap_size == 0 || d->mmap_size > VHU_LOG_MAX_BYTES ||
	    d->mmap_offset > VHU_LOG_MAX_BYTES || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    d->mmap_size + d->mmap_offset > (uint64_t)st.st_size) {
		vio_warn(b->name, "SET_LOG_BASE: bitmap of %llu bytes at offset %llu refused (not "
			 "a memory file, empty, over 1 GiB, or past the file's end)",
			 (unsigned long long)d->mmap_size, (unsigned long long)d->mmap_offset);
		return VHU_DISCONNECT;
	}
	reg.map_len = (size_t)(d->mmap_size + d->mmap_offset);
	p = mmap(NULL, reg.map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		vio_warn(b->name, "SET_LOG_BASE: cannot map the bitmap: %s", strerror(errno));
		return VHU_DISCONNECT;
	}
	reg.map = p;
	if (vhu_region_guard(b, fd, &reg)) {
		vhu_region_unmap(&reg);
		return VHU_DISCONNECT;
	}
	/* A new bitmap (QEMU resizes it as memory grows): no queue writes while it changes. */
	vhu_pause_all(b);
	vhu_region_unmap(&b->log.reg);
	b->log.reg = reg;
	b->log.bits = (uint8_t *)p + d->mmap_offset;
	b->log.bytes = d->mmap_size;
	b->log.owner = b->name;
	atomic_store(&b->log.outside_warned, false);
	vio_info(b->name, "dirty log: %llu-byte bitmap (%llu MiB of guest memory)",
		 (unsigned long long)d->mmap_size,
		 (unsigned long long)(d->mmap_size * 8 * VHOST_LOG_PAGE >> 20));
	vhu_start_all(b);
	m->size = 0;
	return VHU_REPLY;
}

/* SET_LOG_FD: an eventfd kernel vhost signals; a userspace backend only keeps it. */
enum vhu_result h_set_log_fd(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	if (vio_vhu_take_eventfd(m->fds[0])) {
		vio_warn(b->name, "SET_LOG_FD: the fd is not an eventfd");
		return VHU_ERROR;
	}
	vhu_close_fd(&b->log.fd);
	b->log.fd = m->fds[0];
	m->fds[0] = -1;
	return VHU_OK;
}
