/* SPDX-License-Identifier: MIT */
/*
 * The virtio-blk device (virtio 1.2, 5.2): config space, feature offer, and
 * per-queue request processing against a backing engine. Every request is
 * checked in full before the store is touched. Knows no transport, takes no
 * lock and allocates nothing on the data path; a queue's state belongs to
 * the one thread that polls it.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blk_engine.h"
#include "core/log.h"
#include "vio/blk.h"
#include "vio/virtio_spec.h"

#define BLK_BURST 32
#define BLK_IOV_CAP (VIO_BLK_SEG_MAX + 2) /* data segments + header + status */
/* Requests in flight per queue. The ring may be larger; the rest wait in the ring. */
#define BLK_MAX_SLOTS 256
#define SECTOR_SHIFT 9

struct blk_req {
	struct vio_chain chain;
	uint8_t *status;   /* last writable byte */
	uint32_t data_len; /* IN/OUT bytes expected from the engine */
	uint32_t wlen;     /* written length to report on success */
};

struct blk_queue {
	char name[VIO_BLK_NAME_MAX + 16]; /* "<device> q<N>": owner of its log lines */
	bool started;
	bool logged; /* the data path logs a misbehaving driver once per queue */
	uint64_t features; /* negotiated: requests of features not agreed are refused */
	struct vio_vq_ctx ctx;
	struct blk_engine_queue *eq;
	unsigned nslots, nfree, inflight;
	struct blk_req *reqs;
	uint16_t *free_stack;
	struct iovec *iovs;
	struct vio_used_elem *used;
	unsigned nused;
	struct vio_chain chains[BLK_BURST];
	struct blk_engine_cpl cpls[BLK_BURST];
};

struct vio_blk {
	char name[VIO_BLK_NAME_MAX];
	struct blk_engine *eng;
	struct virtio_blk_config cfg;
	uint64_t capacity; /* sectors */
	uint64_t features;
	bool readonly;
	char serial[VIRTIO_BLK_ID_BYTES];
	unsigned nqueues;
	struct blk_queue queues[];
};

_Static_assert(offsetof(struct blk_queue, name) == 0, "queue_start keeps the name by skipping it");
_Static_assert(VIO_BLK_MAX_DWZ_SEG <= BLK_ENGINE_MAX_RANGES, "a request's segments fit one engine call");

/* ---- helpers over iovec lists ---- */

/* Copy len bytes starting at byte off of the list into dst; false if the list is too short. */
static bool iov_gather(const struct iovec *iov, unsigned n, size_t off, void *dst, size_t len)
{
	uint8_t *d = dst;

	for (unsigned i = 0; i < n && len; i++) {
		size_t l = iov[i].iov_len;

		if (off >= l) {
			off -= l;
			continue;
		}
		l -= off;
		if (l > len)
			l = len;
		memcpy(d, (uint8_t *)iov[i].iov_base + off, l);
		d += l;
		len -= l;
		off = 0;
	}
	return len == 0;
}

static size_t iov_scatter(struct iovec *iov, unsigned n, const void *src, size_t len)
{
	const uint8_t *s = src;
	size_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		size_t l = iov[i].iov_len < len - done ? iov[i].iov_len : len - done;

		memcpy(iov[i].iov_base, s + done, l);
		done += l;
	}
	return done;
}

/* Drop the first skip bytes of the list in place; returns the new first element. */
static struct iovec *iov_skip(struct iovec *iov, unsigned *n, size_t skip)
{
	while (*n && skip >= iov->iov_len) {
		skip -= iov->iov_len;
		iov++;
		(*n)--;
	}
	if (*n && skip) {
		iov->iov_base = (uint8_t *)iov->iov_base + skip;
		iov->iov_len -= skip;
	}
	return iov;
}

/* ---- completion ---- */

static void blk_log_once(struct blk_queue *bq, const char *what)
{
	if (bq->logged)
		return;
	bq->logged = true;
	vio_warn(bq->name, "%s (further errors on this queue not logged)", what);
}

static void req_done(struct blk_queue *bq, struct blk_req *req, uint8_t status, uint32_t wlen)
{
	/* The status byte comes after the data; push_burst publishes both with release. */
	if (req->status)
		*req->status = status;
	bq->used[bq->nused++] = (struct vio_used_elem){
		.id = req->chain.id, .ndesc = req->chain.ndesc, .len = req->status ? wlen : 0,
	};
	bq->free_stack[bq->nfree++] = (uint16_t)(req - bq->reqs);
}

static void push_used(struct blk_queue *bq)
{
	if (!bq->nused)
		return;
	vio_virtq_push_burst(bq->ctx.vq, bq->used, bq->nused);
	bq->nused = 0;
	if (vio_virtq_device_should_notify(bq->ctx.vq) && bq->ctx.notify)
		bq->ctx.notify(bq->ctx.notify_opaque);
}

static void engine_done(struct blk_queue *bq, const struct blk_engine_cpl *c)
{
	struct blk_req *req = c->tag;
	bool ok = c->result >= 0 && (uint32_t)c->result == req->data_len;

	bq->inflight--;
	req_done(bq, req, ok ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR,
		 req->wlen);
}

/* Reap without waiting; returns completions handled. */
static int reap(struct vio_blk *blk, struct blk_queue *bq)
{
	int total = 0, got;

	while (bq->inflight) {
		got = blk->eng->ops->reap(bq->eq, bq->cpls, BLK_BURST, false);
		if (got <= 0)
			break;
		for (int i = 0; i < got; i++)
			engine_done(bq, &bq->cpls[i]);
		total += got;
		if (got < BLK_BURST)
			break;
	}
	return total;
}

/* ---- request parsing ---- */

static bool range_ok(const struct vio_blk *blk, uint64_t sector, uint64_t nsectors)
{
	return sector <= blk->capacity && nsectors <= blk->capacity - sector;
}

static bool dio_aligned(const struct blk_engine *e, const struct iovec *iov, unsigned n,
			uint64_t off, uint64_t len)
{
	uint64_t oa = e->dio_off_align, ma = e->dio_mem_align ? e->dio_mem_align : 1;

	if (!oa)
		return true;
	if (off % oa || len % oa)
		return false;
	for (unsigned i = 0; i < n; i++)
		if ((uintptr_t)iov[i].iov_base % ma || iov[i].iov_len % oa)
			return false;
	return true;
}

/* Submit an engine call's immediate or queued result. */
static void submitted(struct blk_queue *bq, struct blk_req *req, int rc)
{
	if (rc == BLK_ENGINE_QUEUED) {
		bq->inflight++;
		return;
	}
	req_done(bq, req, rc == 0 ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR, req->wlen);
}

static uint8_t do_rw(struct vio_blk *blk, struct blk_queue *bq, unsigned q, struct blk_req *req,
		     bool write, uint64_t sector, struct iovec *data, unsigned ndata, uint32_t len)
{
	uint64_t off = sector << SECTOR_SHIFT;
	int rc;

	if (len % VIRTIO_BLK_SECTOR_SIZE || !range_ok(blk, sector, len >> SECTOR_SHIFT))
		return VIRTIO_BLK_S_IOERR;
	if (!dio_aligned(blk->eng, data, ndata, off, len)) {
		blk_log_once(bq, "request not aligned for O_DIRECT");
		return VIRTIO_BLK_S_IOERR;
	}
	req->data_len = len;
	if (!write)
		req->wlen = len + 1;
	if (len == 0) {
		req_done(bq, req, VIRTIO_BLK_S_OK, req->wlen);
		return VIRTIO_BLK_S_OK;
	}
	rc = blk->eng->ops->rw(bq->eq, write, data, ndata, off, req);
	submitted(bq, req, rc);
	return VIRTIO_BLK_S_OK;
}

static uint8_t do_dwz(struct vio_blk *blk, struct blk_queue *bq, struct blk_req *req,
		      uint32_t type, const struct iovec *out, unsigned nout, uint32_t seg_bytes)
{
	struct virtio_blk_discard_write_zeroes seg[VIO_BLK_MAX_DWZ_SEG];
	struct blk_engine_range ranges[VIO_BLK_MAX_DWZ_SEG];
	bool discard = type == VIRTIO_BLK_T_DISCARD;
	unsigned nseg = seg_bytes / sizeof(seg[0]);
	int rc;

	if (blk->readonly || seg_bytes == 0 || seg_bytes % sizeof(seg[0]) ||
	    nseg > VIO_BLK_MAX_DWZ_SEG)
		return VIRTIO_BLK_S_IOERR;
	/* Check every segment before acting on any, so a bad request changes nothing. */
	for (unsigned i = 0; i < nseg; i++) {
		if (!iov_gather(out, nout, sizeof(struct virtio_blk_outhdr) + i * sizeof(seg[0]),
				&seg[i], sizeof(seg[0])))
			return VIRTIO_BLK_S_IOERR;
		if (seg[i].flags & ~VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP)
			return VIRTIO_BLK_S_UNSUPP;
		if (discard && (seg[i].flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP))
			return VIRTIO_BLK_S_UNSUPP;
		if (seg[i].num_sectors > blk->cfg.max_discard_sectors ||
		    !range_ok(blk, seg[i].sector, seg[i].num_sectors))
			return VIRTIO_BLK_S_IOERR;
	}
	for (unsigned i = 0; i < nseg; i++)
		ranges[i] = (struct blk_engine_range){
			.off = seg[i].sector << SECTOR_SHIFT,
			.len = (uint64_t)seg[i].num_sectors << SECTOR_SHIFT,
			.unmap = seg[i].flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP,
		};
	req->data_len = 0;
	rc = blk->eng->ops->dwz(bq->eq, discard, ranges, nseg, req);
	submitted(bq, req, rc);
	return VIRTIO_BLK_S_OK;
}

/*
 * Parse and start one request. Returns VIRTIO_BLK_S_OK once the request is
 * completed or in flight, or the status to fail it with (nothing touched).
 */
static uint8_t start_req(struct vio_blk *blk, struct blk_queue *bq, unsigned q,
			 struct blk_req *req)
{
	struct vio_chain *c = &req->chain;
	struct iovec *out = c->iov, *in = c->iov + c->nout, *last = &in[c->nin - 1];
	unsigned nout = c->nout, nin = c->nin;
	uint32_t out_data, in_data = c->in_bytes - 1;
	struct virtio_blk_outhdr hdr;
	size_t idlen;
	int rc;

	/* The status byte is the last writable byte: take it off the data. */
	req->status = (uint8_t *)last->iov_base + last->iov_len - 1;
	req->wlen = 1;
	if (--last->iov_len == 0)
		nin--;
	if (!iov_gather(out, nout, 0, &hdr, sizeof(hdr)))
		return VIRTIO_BLK_S_IOERR;
	out_data = c->out_bytes - (uint32_t)sizeof(hdr);

	switch (hdr.type) {
	case VIRTIO_BLK_T_IN:
		if (out_data)
			return VIRTIO_BLK_S_IOERR;
		return do_rw(blk, bq, q, req, false, hdr.sector, in, nin, in_data);
	case VIRTIO_BLK_T_OUT:
		if (in_data || blk->readonly)
			return VIRTIO_BLK_S_IOERR;
		out = iov_skip(out, &nout, sizeof(hdr));
		return do_rw(blk, bq, q, req, true, hdr.sector, out, nout, out_data);
	case VIRTIO_BLK_T_FLUSH:
		req->data_len = 0;
		rc = blk->eng->ops->flush(bq->eq, req);
		submitted(bq, req, rc);
		return VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_GET_ID:
		if (out_data || in_data == 0)
			return VIRTIO_BLK_S_IOERR;
		idlen = in_data < sizeof(blk->serial) ? in_data : sizeof(blk->serial);
		idlen = iov_scatter(in, nin, blk->serial, idlen);
		req_done(bq, req, VIRTIO_BLK_S_OK, (uint32_t)idlen + 1);
		return VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		if (!(bq->features & VIO_BIT(hdr.type == VIRTIO_BLK_T_DISCARD ? VIRTIO_BLK_F_DISCARD :
					      VIRTIO_BLK_F_WRITE_ZEROES)))
			return VIRTIO_BLK_S_UNSUPP;
		if (in_data)
			return VIRTIO_BLK_S_IOERR;
		return do_dwz(blk, bq, req, hdr.type, c->iov, c->nout, out_data);
	default:
		return VIRTIO_BLK_S_UNSUPP;
	}
}

static void handle_chain(struct vio_blk *blk, struct blk_queue *bq, unsigned q,
			 struct blk_req *req)
{
	struct vio_chain *c = &req->chain;
	uint8_t st;

	req->status = NULL;
	if (c->status || c->nin == 0) {
		/* Iovecs cut short (the status descriptor among those lost), or none writable. */
		blk_log_once(bq, c->status ? "request with too many segments"
					      : "request without a status byte");
		req_done(bq, req, 0, 0);
		return;
	}
	st = start_req(blk, bq, q, req);
	if (st != VIRTIO_BLK_S_OK)
		req_done(bq, req, st, 1);
}

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
	/* Everything but the name, set once in vio_blk_new. */
	memset((char *)bq + sizeof(bq->name), 0, sizeof(*bq) - sizeof(bq->name));
	rc = blk->eng->ops->queue_open(blk->eng, BLK_MAX_SLOTS, &bq->eq, &depth);
	if (rc)
		return rc;
	bq->nslots = depth;
	bq->reqs = calloc(depth, sizeof(*bq->reqs));
	bq->free_stack = calloc(depth, sizeof(*bq->free_stack));
	bq->iovs = calloc((size_t)depth * BLK_IOV_CAP, sizeof(*bq->iovs));
	bq->used = calloc(depth + BLK_BURST, sizeof(*bq->used));
	if (!bq->reqs || !bq->free_stack || !bq->iovs || !bq->used) {
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

static int blk_queue_poll(void *dev, unsigned q)
{
	struct vio_blk *blk = dev;
	struct blk_queue *bq;
	unsigned n;
	int handled, got;

	if (q >= blk->nqueues || !blk->queues[q].started)
		return -EINVAL;
	bq = &blk->queues[q];
	handled = reap(blk, bq);
	n = bq->nfree < BLK_BURST ? bq->nfree : BLK_BURST;
	/* An idle queue is polled in a loop: look at the index before preparing a burst. */
	if (n && (vio_virtq_device_has_avail(bq->ctx.vq) || vio_virtq_is_broken(bq->ctx.vq))) {
		for (unsigned i = 0; i < n; i++) {
			unsigned slot = bq->free_stack[bq->nfree - 1 - i];

			bq->chains[i].iov = &bq->iovs[(size_t)slot * BLK_IOV_CAP];
			bq->chains[i].iov_cap = BLK_IOV_CAP;
		}
		got = vio_virtq_pop_burst(bq->ctx.vq, bq->ctx.mem, bq->chains, n);
		if (got < 0) {
			push_used(bq);
			return got;
		}
		for (int i = 0; i < got; i++) {
			struct blk_req *req = &bq->reqs[bq->free_stack[--bq->nfree]];

			req->chain = bq->chains[i];
			handle_chain(blk, bq, q, req);
		}
		if (got) {
			blk->eng->ops->commit(bq->eq);
			/* Page-cache hits often complete inside submit: answer them now. */
			handled += reap(blk, bq);
		}
		handled += got;
	}
	push_used(bq);
	return handled;
}

static int blk_queue_wait_fd(void *dev, unsigned q)
{
	struct vio_blk *blk = dev;

	if (q >= blk->nqueues || !blk->queues[q].started)
		return -1;
	return blk->eng->ops->wait_fd(blk->queues[q].eq);
}

static bool blk_queue_full(void *dev, unsigned q)
{
	struct vio_blk *blk = dev;

	return q < blk->nqueues && blk->queues[q].started && blk->queues[q].nfree == 0;
}

static void blk_queue_stop(void *dev, unsigned q)
{
	struct vio_blk *blk = dev;
	struct blk_queue *bq;

	if (q >= blk->nqueues || !blk->queues[q].started)
		return;
	bq = &blk->queues[q];
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
		for (int i = 0; i < got; i++)
			engine_done(bq, &bq->cpls[i]);
	}
	push_used(bq);
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
	cfg->capacity = blk->capacity;
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
	blk->capacity = eng->size >> SECTOR_SHIFT;
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
	return blk->capacity << SECTOR_SHIFT;
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
