/* SPDX-License-Identifier: MIT */
/*
 * The virtio-blk device (virtio 1.2, 5.2) as transports and pollers see it:
 * config space, feature offer, queues started, polled and stopped, and the
 * operator's controls (rate limits, resize, counters). Requests themselves
 * are blk_request.c's. Knows no transport, takes no lock and allocates
 * nothing on the data path; a queue's state belongs to the one thread that
 * polls it.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blk_internal.h"
#include "core/log.h"

/* ---- vdev ops ---- */

static uint64_t blk_get_features(void *dev)
{
	return ((struct vio_blk *)dev)->features;
}

static uint32_t blk_config_len(void *dev)
{
	return VIO_BLK_CONFIG_LEN;
}

static bool cfg_range_ok(uint32_t off, uint32_t len)
{
	return off <= VIO_BLK_CONFIG_LEN && len <= VIO_BLK_CONFIG_LEN - off;
}

static int blk_get_config(void *dev, uint32_t off, void *buf, uint32_t len)
{
	struct vio_blk *blk = dev;

	if (!cfg_range_ok(off, len))
		return -EINVAL;
	memcpy(buf, (uint8_t *)&blk->cfg + off, len);
	return 0;
}

/* Nothing is writable without CONFIG_WCE (not offered): accepted and ignored. */
static int blk_set_config(void *dev, uint32_t off, const void *buf, uint32_t len)
{
	return cfg_range_ok(off, len) ? 0 : -EINVAL;
}

static unsigned blk_max_queues(void *dev)
{
	return ((struct vio_blk *)dev)->nqueues;
}

static void queue_free(struct blk_queue *bq)
{
	free(bq->reqs);
	free(bq->free_stack);
	free(bq->iovs);
	free(bq->used);
	free(bq->held);
	bq->held = NULL;
	bq->reqs = NULL;
	bq->free_stack = NULL;
	bq->iovs = NULL;
	bq->used = NULL;
}

static int blk_queue_start(void *dev, unsigned q, const struct vio_vq_ctx *ctx, uint64_t features)
{
	struct vio_blk *blk = dev;
	struct blk_queue *bq;
	unsigned depth;
	int rc;

	if (q >= blk->nqueues || !ctx || !ctx->vq || !ctx->mem)
		return -EINVAL;
	bq = &blk->queues[q];
	if (bq->started)
		return -EBUSY;
	/* Everything but the name (set once in vio_blk_new) and the counters (kept for life). */
	memset((char *)bq + sizeof(bq->name), 0, offsetof(struct blk_queue, ctr) - sizeof(bq->name));
	rc = blk->eng->ops->queue_open(blk->eng, BLK_MAX_SLOTS, &bq->eq, &depth);
	if (rc)
		return rc;
	bq->nslots = depth;
	bq->reqs = calloc(depth, sizeof(*bq->reqs));
	bq->free_stack = calloc(depth, sizeof(*bq->free_stack));
	bq->iovs = calloc((size_t)depth * BLK_IOV_CAP, sizeof(*bq->iovs));
	bq->used = calloc(depth + BLK_BURST, sizeof(*bq->used));
	bq->held = calloc(depth, sizeof(*bq->held));
	if (!bq->reqs || !bq->free_stack || !bq->iovs || !bq->used || !bq->held) {
		queue_free(bq);
		blk->eng->ops->queue_close(bq->eq);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < depth; i++)
		bq->free_stack[i] = (uint16_t)(depth - 1 - i);
	bq->nfree = depth;
	bq->ctx = *ctx;
	bq->features = features;
	bq->started = true;
	return 0;
}

/* Start requests the rate limits held back, oldest first, while tokens last. */
static unsigned release_held(struct vio_blk *blk, struct blk_queue *bq)
{
	unsigned done = 0;

	while (bq->held_n) {
		struct blk_req *req = &bq->reqs[bq->held[bq->held_head]];

		if (!blk_qos_take(blk, blk_req_bytes(req), bq->now_ns))
			break;
		bq->held_head = (bq->held_head + 1) % bq->nslots;
		bq->held_n--;
		blk_handle_chain(blk, bq, req);
		done++;
	}
	return done;
}

/* Start popped requests; under a rate limit, hold back those the buckets cannot pay for. */
static void start_popped(struct vio_blk *blk, struct blk_queue *bq, unsigned got)
{
	bool limited = atomic_load_explicit(&blk->limited, memory_order_relaxed);

	for (unsigned i = 0; i < got; i++) {
		unsigned slot = bq->free_stack[--bq->nfree];
		struct blk_req *req = &bq->reqs[slot];

		req->chain = bq->chains[i];
		req->start_ns = bq->now_ns;
		if (limited && (bq->held_n || !blk_qos_take(blk, blk_req_bytes(req), bq->now_ns))) {
			bq->held[(bq->held_head + bq->held_n++) % bq->nslots] = (uint16_t)slot;
			BLK_CTR_ADD(bq->ctr.throttled, 1);
			continue;
		}
		blk_handle_chain(blk, bq, req);
	}
}

static int blk_queue_poll(void *dev, unsigned q)
{
	struct vio_blk *blk = dev;
	struct blk_queue *bq;
	unsigned n, started = 0;
	int handled, got;

	if (q >= blk->nqueues || !blk->queues[q].started)
		return -EINVAL;
	bq = &blk->queues[q];
	handled = blk_reap(blk, bq);
	if (bq->held_n) {
		bq->now_ns = blk_now_ns();
		started = release_held(blk, bq);
		handled += (int)started;
	}
	n = bq->nfree < BLK_BURST ? bq->nfree : BLK_BURST;
	/* Requests held back go first: nothing new is taken while any waits. */
	if (bq->held_n)
		n = 0;
	/* An idle queue is polled in a loop: look at the index before preparing a burst. */
	if (n && (vio_virtq_device_has_avail(bq->ctx.vq) || vio_virtq_is_broken(bq->ctx.vq))) {
		for (unsigned i = 0; i < n; i++) {
			unsigned slot = bq->free_stack[bq->nfree - 1 - i];

			bq->chains[i].iov = &bq->iovs[(size_t)slot * BLK_IOV_CAP];
			bq->chains[i].iov_cap = BLK_IOV_CAP;
		}
		got = vio_virtq_pop_burst(bq->ctx.vq, bq->ctx.mem, bq->chains, n);
		if (got < 0) {
			blk_push_used(bq);
			return got;
		}
		if (got) {
			bq->now_ns = blk_now_ns();
			start_popped(blk, bq, (unsigned)got);
			started += (unsigned)got;
		}
		handled += got;
	}
	if (started) {
		blk->eng->ops->commit(bq->eq);
		/* Page-cache hits often complete inside submit: answer them now. */
		handled += blk_reap(blk, bq);
	}
	blk_push_used(bq);
	return handled;
}

static int blk_queue_wait_fd(void *dev, unsigned q)
{
	struct vio_blk *blk = dev;

	if (q >= blk->nqueues || !blk->queues[q].started)
		return -1;
	return blk->eng->ops->wait_fd(blk->queues[q].eq);
}

/* No slot free, or requests held by the rate limits: the ring can wait. */
static bool blk_queue_full(void *dev, unsigned q)
{
	struct vio_blk *blk = dev;
	const struct blk_queue *bq = &blk->queues[q];

	return q < blk->nqueues && bq->started && (bq->nfree == 0 || bq->held_n);
}

static uint64_t blk_queue_wait_ns(void *dev, unsigned q)
{
	struct vio_blk *blk = dev;
	struct blk_queue *bq = &blk->queues[q];

	if (q >= blk->nqueues || !bq->started || !bq->held_n)
		return 0;
	return blk_qos_wait_ns(blk, blk_req_bytes(&bq->reqs[bq->held[bq->held_head]]),
			       blk_now_ns());
}

static void blk_queue_stop(void *dev, unsigned q)
{
	struct vio_blk *blk = dev;
	struct blk_queue *bq;

	if (q >= blk->nqueues || !blk->queues[q].started)
		return;
	bq = &blk->queues[q];
	/* Requests the rate limits held back are started now: the device owes them all. */
	while (bq->held_n) {
		struct blk_req *req = &bq->reqs[bq->held[bq->held_head]];

		bq->held_head = (bq->held_head + 1) % bq->nslots;
		bq->held_n--;
		blk_handle_chain(blk, bq, req);
	}
	blk->eng->ops->commit(bq->eq);
	while (bq->inflight) {
		int got = blk->eng->ops->reap(bq->eq, bq->cpls, BLK_BURST, true);

		if (got == -EINTR || got == -EAGAIN)
			continue;
		if (got < 0) {
			/* The kernel may still write into guest memory: keep the slots. */
			vio_err(bq->name, "waiting for %u requests: %s", bq->inflight,
				strerror(-got));
			bq->started = false;
			return;
		}
		bq->now_ns = blk_now_ns();
		for (int i = 0; i < got; i++)
			blk_engine_done(bq, &bq->cpls[i]);
	}
	blk_push_used(bq);
	blk->eng->ops->queue_close(bq->eq);
	queue_free(bq);
	bq->started = false;
}

static const struct vio_vdev_ops blk_vdev_ops = {
	.get_features = blk_get_features,
	.config_len = blk_config_len,
	.get_config = blk_get_config,
	.set_config = blk_set_config,
	.max_queues = blk_max_queues,
	.queue_start = blk_queue_start,
	.queue_poll = blk_queue_poll,
	.queue_wait_fd = blk_queue_wait_fd,
	.queue_full = blk_queue_full,
	.queue_wait_ns = blk_queue_wait_ns,
	.queue_stop = blk_queue_stop,
};

/* ---- public ---- */

static unsigned log2u(uint32_t v)
{
	unsigned r = 0;

	while (v > 1) {
		v >>= 1;
		r++;
	}
	return r;
}

static void fill_config(struct vio_blk *blk)
{
	const struct blk_engine *e = blk->eng;
	struct virtio_blk_config *cfg = &blk->cfg;

	memset(cfg, 0, sizeof(*cfg));
	cfg->capacity = atomic_load(&blk->capacity);
	cfg->size_max = VIO_BLK_SIZE_MAX;
	cfg->seg_max = VIO_BLK_SEG_MAX;
	cfg->blk_size = e->lbs;
	cfg->topology.physical_block_exp = (uint8_t)log2u(e->pbs / e->lbs);
	cfg->topology.min_io_size = 1;
	cfg->num_queues = (uint16_t)blk->nqueues;
	cfg->max_discard_sectors = e->max_dwz_sectors && e->max_dwz_sectors < VIO_BLK_MAX_DWZ_SECTORS ?
				   e->max_dwz_sectors : VIO_BLK_MAX_DWZ_SECTORS;
	cfg->max_discard_seg = VIO_BLK_MAX_DWZ_SEG;
	cfg->discard_sector_alignment = e->lbs / VIRTIO_BLK_SECTOR_SIZE;
	cfg->max_write_zeroes_sectors = cfg->max_discard_sectors;
	cfg->max_write_zeroes_seg = VIO_BLK_MAX_DWZ_SEG;
	cfg->write_zeroes_may_unmap = e->zeroes_may_unmap;
}

int vio_blk_new(const struct vio_blk_opts *opts, struct vio_blk **out)
{
	unsigned nq = opts->queues ? opts->queues : 1;
	struct blk_engine *eng;
	struct vio_blk *blk;
	const char *serial = opts->serial ? opts->serial : "vio";
	int rc;

	if (nq > VIO_BLK_MAX_QUEUES)
		return -EINVAL;
	if (opts->file)
		rc = blk_engine_uring_open(opts->file, opts->readonly, opts->direct, &eng);
	else if (opts->ram_size && !opts->direct && !opts->null_size)
		rc = blk_engine_ram_open(opts->ram_size, &eng);
	else if (opts->null_size && !opts->direct)
		rc = blk_engine_null_open(opts->null_size, &eng);
	else
		rc = -EINVAL;
	if (rc)
		return rc;
	blk = calloc(1, sizeof(*blk) + nq * sizeof(blk->queues[0]));
	if (!blk) {
		eng->ops->close(eng);
		return -ENOMEM;
	}
	blk->eng = eng;
	snprintf(blk->name, sizeof(blk->name), "%s", opts->name && *opts->name ? opts->name :
		 opts->file ? opts->file : "blk");
	eng->owner = blk->name;
	blk->nqueues = nq;
	for (unsigned q = 0; q < nq; q++) {
		char qname[sizeof(blk->queues[q].name)];

		snprintf(qname, sizeof(qname), "%.*s q%u", VIO_BLK_NAME_MAX - 1, blk->name, q);
		memcpy(blk->queues[q].name, qname, sizeof(qname));
	}
	blk->readonly = opts->readonly;
	/* A window of the store: [offset, offset + length), length 0 meaning "to the end". */
	if (opts->offset % VIRTIO_BLK_SECTOR_SIZE || opts->length % VIRTIO_BLK_SECTOR_SIZE ||
	    opts->offset % eng->lbs || opts->length % eng->lbs || opts->offset >= eng->size ||
	    opts->length > eng->size - opts->offset) {
		eng->ops->close(eng);
		free(blk);
		return -EINVAL;
	}
	blk->base = opts->offset;
	blk->window = opts->length;
	atomic_init(&blk->capacity,
		    (opts->length ? opts->length : eng->size - opts->offset) >> SECTOR_SHIFT);
	strncpy(blk->serial, serial, sizeof(blk->serial));
	blk->features = VIO_BIT(VIRTIO_BLK_F_SIZE_MAX) | VIO_BIT(VIRTIO_BLK_F_SEG_MAX) |
			VIO_BIT(VIRTIO_BLK_F_BLK_SIZE) | VIO_BIT(VIRTIO_BLK_F_FLUSH) |
			VIO_BIT(VIRTIO_BLK_F_TOPOLOGY) | VIO_BIT(VIRTIO_BLK_F_MQ) |
			VIO_BIT(VIRTIO_F_VERSION_1) | VIO_BIT(VIRTIO_F_INDIRECT_DESC) |
			VIO_BIT(VIRTIO_F_EVENT_IDX) | VIO_BIT(VIRTIO_F_RING_PACKED);
	if (opts->readonly)
		blk->features |= VIO_BIT(VIRTIO_BLK_F_RO);
	else
		blk->features |= VIO_BIT(VIRTIO_BLK_F_DISCARD) | VIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES);
	fill_config(blk);
	*out = blk;
	return 0;
}

struct vio_vdev vio_blk_vdev(struct vio_blk *blk)
{
	return (struct vio_vdev){ .ops = &blk_vdev_ops, .dev = blk };
}

uint64_t vio_blk_capacity_bytes(const struct vio_blk *blk)
{
	return atomic_load(&blk->capacity) << SECTOR_SHIFT;
}

int vio_blk_resize(struct vio_blk *blk, uint64_t bytes)
{
	uint64_t avail;
	int r;

	if (bytes == 0 || bytes % VIRTIO_BLK_SECTOR_SIZE || bytes % blk->eng->lbs)
		return -EINVAL;
	/* A window is a slice of a store other devices may share: it never grows past it. */
	if (blk->window && bytes > blk->window)
		return -ENOSPC;
	if (blk->eng->ops->resize && blk->base + bytes > blk->eng->size) {
		if (blk->readonly)
			return -EROFS;
		r = blk->eng->ops->resize(blk->eng, blk->base + bytes);
		if (r)
			return r;
	}
	avail = blk->eng->size - blk->base;
	if (bytes > avail)
		return -ENOSPC;
	/* Requests beyond the new end fail from now on; the guest learns it from the config. */
	atomic_store(&blk->capacity, bytes >> SECTOR_SHIFT);
	blk->cfg.capacity = bytes >> SECTOR_SHIFT;
	return 0;
}

const char *vio_blk_op_str(enum vio_blk_op op)
{
	static const char *const names[VIO_BLK_OP_COUNT] = {
		"read", "write", "flush", "discard", "write_zeroes", "get_id", "other",
	};

	return (unsigned)op < VIO_BLK_OP_COUNT ? names[op] : "unknown";
}

const char *vio_blk_err_str(enum vio_blk_err err)
{
	static const char *const names[VIO_BLK_ERR_COUNT] = { "ioerr", "unsupported", "malformed" };

	return (unsigned)err < VIO_BLK_ERR_COUNT ? names[err] : "unknown";
}

static void add_queue_stats(const struct blk_queue *bq, struct vio_blk_stats *st)
{
	const struct blk_counters *c = &bq->ctr;

	for (unsigned i = 0; i < VIO_BLK_OP_COUNT; i++)
		st->ops[i] += atomic_load_explicit(&c->ops[i], memory_order_relaxed);
	for (unsigned i = 0; i < VIO_BLK_ERR_COUNT; i++)
		st->errors[i] += atomic_load_explicit(&c->errors[i], memory_order_relaxed);
	for (unsigned i = 0; i < VIO_BLK_LAT_BUCKETS; i++)
		st->latency[i] += atomic_load_explicit(&c->latency[i], memory_order_relaxed);
	st->latency_sum_ns += atomic_load_explicit(&c->latency_sum_ns, memory_order_relaxed);
	st->read_bytes += atomic_load_explicit(&c->read_bytes, memory_order_relaxed);
	st->write_bytes += atomic_load_explicit(&c->write_bytes, memory_order_relaxed);
	st->throttled += atomic_load_explicit(&c->throttled, memory_order_relaxed);
}

int vio_blk_get_stats(const struct vio_blk *blk, int q, struct vio_blk_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (q >= (int)blk->nqueues)
		return -EINVAL;
	for (unsigned i = 0; i < blk->nqueues; i++)
		if (q < 0 || (unsigned)q == i)
			add_queue_stats(&blk->queues[i], st);
	return 0;
}

int vio_blk_set_qos(struct vio_blk *blk, const struct vio_blk_qos *qos)
{
	uint64_t now = blk_now_ns();

	vio_bucket_set(&blk->iops, qos->iops, qos->iops_burst, now);
	vio_bucket_set(&blk->bps, qos->bps, qos->bps_burst, now);
	atomic_store(&blk->limited, qos->iops || qos->bps);
	return 0;
}

void vio_blk_get_qos(const struct vio_blk *blk, struct vio_blk_qos *qos)
{
	*qos = (struct vio_blk_qos){
		.iops = atomic_load(&blk->iops.rate), .iops_burst = atomic_load(&blk->iops.burst),
		.bps = atomic_load(&blk->bps.rate), .bps_burst = atomic_load(&blk->bps.burst),
	};
}

void vio_blk_free(struct vio_blk *blk)
{
	if (!blk)
		return;
	for (unsigned q = 0; q < blk->nqueues; q++)
		blk_queue_stop(blk, q);
	blk->eng->ops->close(blk->eng);
	free(blk);
}
