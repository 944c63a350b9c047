/* SPDX-License-Identifier: MIT */
/*
 * Live migration, the frontend's side: what a VMM does with a vhost-user
 * device. Dirty logging (a bitmap memfd handed over with SET_LOG_BASE,
 * VHOST_F_LOG_ALL, rings set again with VHOST_VRING_F_LOG; the bitmap read
 * and cleared word by word with an atomic exchange, since the backend sets
 * bits meanwhile), and the hand-over: a destination backend with its own
 * guest memory, filled by copying pages while the source runs, that takes
 * the rings over at the positions the stopped source gave. Never copies
 * outside guest memory and never leaves a mapping or fd behind.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/log.h"
#include "frontend_internal.h"
#include "socket.h"

static int map_log(struct vio_vhu_frontend *f)
{
	uint64_t pages = (f->mem_size + VIO_VHU_LOG_PAGE - 1) / VIO_VHU_LOG_PAGE;
	size_t bytes;
	void *p;

	if (f->log)
		return 0;
	f->log_words = (size_t)((pages + 63) / 64);
	bytes = f->log_words * sizeof(uint64_t);
	f->log_fd = memfd_create("vio-dirty-log", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (f->log_fd < 0)
		return -errno;
	/* Sealed: the backend need not guard against us shrinking it. */
	if (ftruncate(f->log_fd, (off_t)bytes) < 0 ||
	    fcntl(f->log_fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		goto fail;
	p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, f->log_fd, 0);
	if (p == MAP_FAILED)
		goto fail;
	f->log = p;
	return 0;
fail:
	vhu_fe_close_fd(&f->log_fd);
	return -errno;
}

static int set_log_base(struct vio_vhu_frontend *f)
{
	struct vio_vhu_msg m = { .request = VHOST_USER_SET_LOG_BASE, .size = 16 };

	m.p.log.mmap_size = f->log_words * sizeof(uint64_t);
	m.p.log.mmap_offset = 0;
	m.fds[0] = f->log_fd;
	m.nfds = 1;
	return vhu_fe_request(f, &m);
}

/* LOG_ALL on or off, and every running ring told whether to log its used ring. */
static int set_logging(struct vio_vhu_frontend *f, bool on)
{
	uint64_t feat = f->features | (f->backend_features & VIO_BIT(VHOST_USER_F_PROTOCOL_FEATURES));
	int r;

	if (on)
		feat |= VIO_BIT(VHOST_F_LOG_ALL);
	r = vhu_fe_request_u64(f, VHOST_USER_SET_FEATURES, feat);
	if (r)
		return r;
	f->logging = on;
	for (unsigned i = 0; !r && i < f->nqueues; i++)
		if (f->q[i].running)
			r = vhu_fe_send_vring_addr(f, i, on);
	return r;
}

int vio_vhu_frontend_log_start(struct vio_vhu_frontend *f)
{
	int r;

	if (!vhu_fe_has_proto(f, VHOST_USER_PROTOCOL_F_LOG_SHMFD) ||
	    !(f->backend_features & VIO_BIT(VHOST_F_LOG_ALL)))
		return -ENOTSUP;
	r = map_log(f);
	if (!r)
		r = set_log_base(f);
	if (!r)
		r = set_logging(f, true);
	return r;
}

int vio_vhu_frontend_log_stop(struct vio_vhu_frontend *f)
{
	return f->logging ? set_logging(f, false) : 0;
}

size_t vio_vhu_frontend_log_words(const struct vio_vhu_frontend *f)
{
	return (size_t)(((f->mem_size + VIO_VHU_LOG_PAGE - 1) / VIO_VHU_LOG_PAGE + 63) / 64);
}

uint64_t vio_vhu_frontend_log_collect(struct vio_vhu_frontend *f, uint64_t *bitmap, size_t words)
{
	uint64_t n = 0;

	if (!f->log)
		return 0;
	if (words > f->log_words)
		words = f->log_words;
	for (size_t i = 0; i < words; i++) {
		uint64_t v = __atomic_load_n(&f->log[i], __ATOMIC_RELAXED);

		if (!v)
			continue;
		v = __atomic_exchange_n(&f->log[i], 0, __ATOMIC_ACQ_REL);
		bitmap[i] |= v;
		n += (uint64_t)__builtin_popcountll(v);
	}
	return n;
}

/* ---- the hand-over to a destination backend ---- */

int vio_vhu_frontend_migrate_prepare(struct vio_vhu_frontend *f, const char *socket_path)
{
	void *p;
	int r;

	if (f->dst_host || !socket_path)
		return -EINVAL;
	f->dst_path = strdup(socket_path);
	if (!f->dst_path)
		return -ENOMEM;
	f->dst_mem_fd = memfd_create("vio-guest", MFD_CLOEXEC);
	if (f->dst_mem_fd < 0 || ftruncate(f->dst_mem_fd, (off_t)f->mem_size) < 0) {
		r = -errno;
		goto fail;
	}
	p = mmap(NULL, f->mem_size, PROT_READ | PROT_WRITE, MAP_SHARED, f->dst_mem_fd, 0);
	if (p == MAP_FAILED) {
		r = -errno;
		goto fail;
	}
	f->dst_host = p;
	r = vio_vhu_connect(socket_path);
	if (r < 0)
		goto fail;
	f->dst_sock = r;
	return 0;
fail:
	vhu_fe_migrate_close(f);
	return r;
}

int vio_vhu_frontend_migrate_copy(struct vio_vhu_frontend *f, uint64_t gpa, uint64_t len)
{
	if (!f->dst_host || !f->mem_host)
		return -EINVAL;
	if (len == 0 || gpa >= f->mem_size || len > f->mem_size - gpa)
		return -EFAULT;
	memcpy((char *)f->dst_host + gpa, (const char *)f->mem_host + gpa, len);
	return 0;
}

uint64_t vio_vhu_frontend_migrate_copy_pages(struct vio_vhu_frontend *f, const uint64_t *bitmap,
					     size_t words)
{
	uint64_t n = 0;

	if (words > vio_vhu_frontend_log_words(f))
		words = vio_vhu_frontend_log_words(f);
	for (size_t i = 0; i < words; i++) {
		for (uint64_t v = bitmap[i]; v; v &= v - 1) {
			uint64_t gpa = ((uint64_t)i * 64 + (unsigned)__builtin_ctzll(v)) *
				       VIO_VHU_LOG_PAGE;
			uint64_t len = f->mem_size - gpa < VIO_VHU_LOG_PAGE ? f->mem_size - gpa :
									       VIO_VHU_LOG_PAGE;

			if (vio_vhu_frontend_migrate_copy(f, gpa, len) == 0)
				n++;
		}
	}
	return n;
}

int vio_vhu_frontend_migrate_copy_rings(struct vio_vhu_frontend *f)
{
	bool packed = f->features & VIO_BIT(VIRTIO_F_RING_PACKED);
	int r = 0;

	/*
	 * What the driver side writes: split, the descriptor table and the
	 * available ring; packed, the descriptor ring (shared with the device)
	 * and the driver event area. Indirect tables follow the rings.
	 */
	for (unsigned i = 0; !r && i < f->nqueues; i++) {
		const struct vio_virtq_addrs *a = &f->q[i].addrs;
		uint64_t end = a->desc + vio_virtq_driver_area_size(f->features, f->queue_size,
								     f->indirect_max);

		if (packed)
			r = vio_vhu_frontend_migrate_copy(f, a->desc, end - a->desc);
		else
			r = vio_vhu_frontend_migrate_copy(f, a->desc, a->device - a->desc);
		if (!r && !packed && end > a->device + virtq_used_bytes(f->queue_size))
			/* indirect tables after the used ring */
			r = vio_vhu_frontend_migrate_copy(f, a->device + virtq_used_bytes(f->queue_size),
							  end - a->device - virtq_used_bytes(f->queue_size));
	}
	return r;
}

int vio_vhu_frontend_migrate_finish(struct vio_vhu_frontend *f, const uint32_t *bases)
{
	void *p;
	int r;

	if (!f->dst_host || f->dst_sock < 0 || !bases)
		return -EINVAL;
	for (unsigned i = 0; i < f->nqueues; i++)
		if (f->q[i].running)
			return -EBUSY;
	/*
	 * The destination's memory takes the source's place at the same
	 * address, so every pointer the driver side holds stays right; the
	 * source's memory is gone from this process from here on.
	 */
	p = mmap(f->mem_host, f->mem_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
		 f->dst_mem_fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	munmap(f->dst_host, f->mem_size);
	f->dst_host = NULL;
	vhu_fe_close_fd(&f->mem_fd);
	f->mem_fd = f->dst_mem_fd;
	f->dst_mem_fd = -1;
	/* The source's connection, inflight region and bitmap belong to the source. */
	vhu_fe_close_fd(&f->sock);
	vhu_fe_close_fd(&f->inflight_fd);
	if (f->log)
		munmap(f->log, f->log_words * sizeof(uint64_t));
	f->log = NULL;
	vhu_fe_close_fd(&f->log_fd);
	f->logging = false;
	f->sock = f->dst_sock;
	f->dst_sock = -1;
	free(f->path);
	f->path = f->dst_path;
	f->dst_path = NULL;
	r = vhu_fe_resume(f, bases);
	if (r)
		vio_warn(f->name, "destination backend did not take the rings over: %s",
			 strerror(-r));
	else
		vio_info(f->name, "migrated to %s", f->path);
	return r;
}

void vhu_fe_migrate_close(struct vio_vhu_frontend *f)
{
	if (f->log)
		munmap(f->log, f->log_words * sizeof(uint64_t));
	f->log = NULL;
	vhu_fe_close_fd(&f->log_fd);
	if (f->dst_host)
		munmap(f->dst_host, f->mem_size);
	f->dst_host = NULL;
	vhu_fe_close_fd(&f->dst_mem_fd);
	vhu_fe_close_fd(&f->dst_sock);
	free(f->dst_path);
	f->dst_path = NULL;
}
