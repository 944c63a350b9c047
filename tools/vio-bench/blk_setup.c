/* SPDX-License-Identifier: MIT */
/*
 * vio-bench blk: set-up before the load. Owns the feature and queue plan,
 * connecting to the backend, reading its config space, checking the options
 * against the disk, and the jobs with their slots and buffers (and freeing
 * them). It never submits a request.
 */
#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blk_bench.h"
#include "latency.h"
#include "vio/blk.h"
#include "vio/blk_client.h"
#include "vio/vhost_user.h"
#include "vio/virtio_spec.h"

#define BLK_MIN_QSIZE 256
#define BLK_MAX_QSIZE 1024            /* QEMU's libvhost-user takes no larger queue */

static uint64_t wanted_features(const struct blk_opts *o)
{
	uint64_t f = BIT(VIRTIO_BLK_F_SIZE_MAX) | BIT(VIRTIO_BLK_F_SEG_MAX) |
		     BIT(VIRTIO_BLK_F_RO) | BIT(VIRTIO_BLK_F_BLK_SIZE) | BIT(VIRTIO_BLK_F_FLUSH) |
		     BIT(VIRTIO_BLK_F_TOPOLOGY) | BIT(VIRTIO_BLK_F_MQ) |
		     BIT(VIRTIO_BLK_F_DISCARD) | BIT(VIRTIO_BLK_F_WRITE_ZEROES);

	if (!o->no_event_idx)
		f |= BIT(VIRTIO_F_EVENT_IDX);
	if (!o->no_indirect)
		f |= BIT(VIRTIO_F_INDIRECT_DESC);
	if (o->packed)
		f |= BIT(VIRTIO_F_RING_PACKED);
	if (o->iommu)
		f |= BIT(VIRTIO_F_ACCESS_PLATFORM);
	return f;
}

static unsigned pow2_at_least(unsigned v)
{
	unsigned p = 1;

	while (p < v)
		p <<= 1;
	return p;
}

/*
 * Queue size and indirect tables before we know the device: room for
 * iodepth requests even without indirect descriptors when that fits QEMU's
 * limit, and tables for a request cut in 4 KiB segments (SIZE_MAX unknown).
 */
static void plan_queues(const struct blk_opts *o, struct blk_dev *d)
{
	unsigned segs = (o->bs + 4095) / 4096;
	unsigned want = pow2_at_least(o->iodepth * 3);

	if (segs > VIO_BLK_CLIENT_MAX_IOV)
		segs = VIO_BLK_CLIENT_MAX_IOV;
	d->indirect_max = (uint16_t)(segs + 2);
	d->qsize = (uint16_t)(want < BLK_MIN_QSIZE ? BLK_MIN_QSIZE :
			      want > BLK_MAX_QSIZE ? BLK_MAX_QSIZE : want);
}

/* Shared memory: rings and indirect tables, the client's slots, the data buffers, slack. */
static uint64_t mem_needed(const struct blk_opts *o, const struct blk_dev *d)
{
	uint64_t ring = vio_virtq_driver_area_size(wanted_features(o) | BIT(VIRTIO_F_VERSION_1),
						   d->qsize, d->indirect_max);
	uint64_t per_q = ((ring + 4095) & ~4095ull) + (uint64_t)d->qsize * 64 +
			 (uint64_t)o->iodepth * ((o->bs + 4095) & ~4095ull);
	uint64_t total = (uint64_t)o->queues * per_q + (1u << 20);

	return (total + 0x1fffff) & ~0x1fffffull;
}

static int connect_backend(struct blk_run *run)
{
	struct blk_opts *o = &run->o;
	struct vio_vhu_frontend_opts fo;
	int r;

	plan_queues(o, &run->d);
	fo = (struct vio_vhu_frontend_opts){
		.socket_path = o->socket, .mem_size = mem_needed(o, &run->d),
		.features = wanted_features(o), .nqueues = o->queues,
		.queue_size = run->d.qsize, .indirect_max = run->d.indirect_max,
	};
	r = vio_vhu_frontend_connect(&fo, &run->f);
	if (r) {
		fprintf(stderr, "vio-bench blk: %s: cannot set up a vhost-user-blk device: %s%s\n",
			o->socket, strerror(-r),
			r == -ENOTSUP ? " (no VIRTIO_F_VERSION_1, fewer queues than --queues, or "
					"features refused)" : "");
		return r;
	}
	run->d.features = vio_vhu_frontend_features(run->f);
	return 0;
}

/* Capacity up to num_queues; a backend with a shorter config space still gives capacity. */
static int read_config(struct blk_run *run)
{
	struct virtio_blk_config cfg = { 0 };
	struct blk_dev *d = &run->d;
	uint32_t len = offsetof(struct virtio_blk_config, num_queues) + sizeof(cfg.num_queues);
	int r = vio_vhu_frontend_get_config(run->f, 0, &cfg, len);

	if (r == -EIO)
		r = vio_vhu_frontend_get_config(run->f, 0, &cfg, len = sizeof(cfg.capacity));
	if (r) {
		fprintf(stderr, "vio-bench blk: %s: cannot read the disk's config space: %s\n",
			run->o.socket, strerror(-r));
		return r;
	}
	d->capacity = le64toh(cfg.capacity) * SECTOR;
	if (len == sizeof(cfg.capacity))
		return 0;
	if (d->features & BIT(VIRTIO_BLK_F_MQ))
		d->num_queues = le16toh(cfg.num_queues);
	if (d->features & BIT(VIRTIO_BLK_F_BLK_SIZE))
		d->blk_size = le32toh(cfg.blk_size);
	if (d->features & BIT(VIRTIO_BLK_F_SEG_MAX))
		d->seg_max = le32toh(cfg.seg_max);
	if (d->features & BIT(VIRTIO_BLK_F_SIZE_MAX))
		d->size_max = le32toh(cfg.size_max);
	return 0;
}

static int fail_check(const struct blk_run *run, const char *why)
{
	fprintf(stderr, "vio-bench blk: %s: %s\n", run->o.socket, why);
	return -EINVAL;
}

/* Does the plan fit what the device offered? Cut requests in segments of size_max. */
static int check_device(struct blk_run *run)
{
	const struct blk_opts *o = &run->o;
	struct blk_dev *d = &run->d;
	unsigned per_req;
	char why[200];

	if (o->packed && !(d->features & BIT(VIRTIO_F_RING_PACKED)))
		return fail_check(run, "the backend does not offer VIRTIO_F_RING_PACKED");
	if (o->iommu && !(d->features & BIT(VIRTIO_F_ACCESS_PLATFORM)))
		return fail_check(run, "the backend does not offer VIRTIO_F_ACCESS_PLATFORM");
	if ((d->features & BIT(VIRTIO_BLK_F_RO)) && o->rw != RW_READ && o->rw != RW_RANDREAD)
		return fail_check(run, "the disk is read-only; use --rw read or randread");
	if (o->queues > 1 && !(d->features & BIT(VIRTIO_BLK_F_MQ)))
		return fail_check(run, "the backend does not offer VIRTIO_BLK_F_MQ; use --queues 1");
	if (d->num_queues && o->queues > d->num_queues) {
		snprintf(why, sizeof(why), "the disk has %u queues, --queues asks for %u",
			 d->num_queues, o->queues);
		return fail_check(run, why);
	}
	if (d->blk_size >= SECTOR && o->bs % d->blk_size) {
		snprintf(why, sizeof(why), "--bs %u is not a multiple of the disk's block size %u",
			 o->bs, d->blk_size);
		return fail_check(run, why);
	}
	d->seg_bytes = d->size_max >= SECTOR && d->size_max < o->bs ? d->size_max & ~(SECTOR - 1)
								     : o->bs;
	d->nseg = (o->bs + d->seg_bytes - 1) / d->seg_bytes;
	if (d->nseg > VIO_BLK_CLIENT_MAX_IOV || (d->seg_max && d->nseg > d->seg_max)) {
		snprintf(why, sizeof(why), "--bs %u needs %u segments of size_max %u; the disk takes %u",
			 o->bs, d->nseg, d->size_max, d->seg_max ? d->seg_max : VIO_BLK_CLIENT_MAX_IOV);
		return fail_check(run, why);
	}
	per_req = (d->features & BIT(VIRTIO_F_INDIRECT_DESC)) && d->nseg + 2 <= d->indirect_max ?
			  1 : d->nseg + 2;
	if ((uint64_t)o->iodepth * per_req > d->qsize) {
		snprintf(why, sizeof(why), "a %u-descriptor queue holds %u requests of %u descriptors; "
			 "lower --iodepth", d->qsize, d->qsize / per_req, per_req);
		return fail_check(run, why);
	}
	return 0;
}

/* Connect, read the config space, check the options against it. Errors are reported. */
int blk_open_device(struct blk_run *run)
{
	int r = connect_backend(run);

	if (!r)
		r = read_config(run);
	if (!r)
		r = check_device(run);
	return r;
}

static int setup_slots(struct blk_run *run, struct blk_job *j)
{
	const struct blk_opts *o = &run->o;
	uint32_t piece = run->d.seg_bytes;

	j->slots = calloc(o->iodepth, sizeof(*j->slots));
	j->done = calloc(o->iodepth, sizeof(*j->done));
	j->free = calloc(o->iodepth, sizeof(*j->free));
	if (!j->slots || !j->done || !j->free)
		return -ENOMEM;
	for (unsigned i = 0; i < o->iodepth; i++) {
		struct io_slot *s = &j->slots[i];

		s->job = j;
		s->buf = vio_vhu_frontend_alloc(run->f, o->bs, 4096);
		s->iov = calloc(run->d.nseg, sizeof(*s->iov));
		if (!s->buf || !s->iov)
			return -ENOMEM;
		memset(s->buf, 0, o->bs);
		for (uint32_t k = 0, off = 0; k < run->d.nseg; k++, off += piece)
			s->iov[k] = (struct iovec){ (char *)s->buf + off,
						    o->bs - off < piece ? o->bs - off : piece };
		/* Popped from the top: slot 0 goes first. */
		j->free[o->iodepth - 1 - i] = s;
	}
	j->nfree = o->iodepth;
	return 0;
}

int blk_setup_jobs(struct blk_run *run)
{
	struct blk_opts *o = &run->o;
	uint64_t bytes = o->size ? o->size : run->d.capacity;
	struct vio_drv_ctx ctx[VIO_VHU_MAX_QUEUES];
	uint64_t nblocks, per;
	size_t area_len;
	void *area;
	int r;

	if (bytes > run->d.capacity) {
		fprintf(stderr, "vio-bench blk: --size %llu is beyond the disk (%llu bytes)\n",
			(unsigned long long)bytes, (unsigned long long)run->d.capacity);
		return -EINVAL;
	}
	nblocks = bytes / o->bs;
	per = nblocks / o->queues;
	/* --verify: a queue never has two requests on a block, so it needs more blocks than slots. */
	if (per < (o->verify ? o->iodepth + 1ull : 1)) {
		fprintf(stderr, "vio-bench blk: %llu bytes hold too few %u-byte blocks for %u queues "
			"at iodepth %u%s\n", (unsigned long long)bytes, o->bs, o->queues, o->iodepth,
			o->verify ? " with --verify" : "");
		return -EINVAL;
	}
	r = blk_setup_verify(run, nblocks);
	if (r)
		return r;
	for (unsigned q = 0; q < o->queues; q++)
		ctx[q] = *vio_vhu_frontend_queue(run->f, q);
	area_len = vio_blk_client_area_size(ctx, o->queues);
	area = vio_vhu_frontend_alloc(run->f, area_len, 64);
	if (!area)
		return -ENOMEM;
	run->client_area = area;
	run->client_area_len = area_len;
	r = vio_blk_client_new(ctx, o->queues, area, area_len, &run->c);
	if (r)
		return r;
	run->jobs = calloc(o->queues, sizeof(*run->jobs));
	if (!run->jobs)
		return -ENOMEM;
	for (unsigned q = 0; q < o->queues; q++) {
		struct blk_job *j = &run->jobs[q];

		*j = (struct blk_job){ .run = run, .q = q, .first = q * per, .nblocks = per,
				       .rng = (0x9e3779b97f4a7c15ull * (q + 1)) ^ blk_now_ns() };
		if (!j->rng)
			j->rng = 1;
		lat_reset(&j->lat);
		r = setup_slots(run, j);
		if (r)
			return r;
	}
	return 0;
}

void blk_free_jobs(struct blk_run *run)
{
	if (!run->jobs)
		return;
	for (unsigned q = 0; q < run->o.queues; q++) {
		struct blk_job *j = &run->jobs[q];

		for (unsigned i = 0; j->slots && i < run->o.iodepth; i++)
			free(j->slots[i].iov);
		free(j->slots);
		free(j->done);
		free(j->free);
	}
	free(run->jobs);
	run->jobs = NULL;
}
