/* SPDX-License-Identifier: MIT */
/*
 * One virtio-blk request, from a popped chain to its status byte: parsing
 * and checking it in full before the store is touched, handing it to the
 * engine, completing it and counting it. Knows no transport, takes no lock,
 * allocates nothing; runs on the thread that owns the request's queue.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "blk_internal.h"
#include "core/log.h"

uint64_t blk_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

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

/* Latency bucket of d nanoseconds: [2^i, 2^(i+1)) microseconds, 0 below 2 us. */
static unsigned lat_bucket(uint64_t d)
{
	uint64_t us = d / 1000;
	unsigned b = us < 2 ? 0 : 63 - (unsigned)__builtin_clzll(us);

	return b < VIO_BLK_LAT_BUCKETS ? b : VIO_BLK_LAT_BUCKETS - 1;
}

/* A request ends: count it by kind, its bytes, its error, its latency. */
static void count_done(struct blk_queue *bq, const struct blk_req *req, uint8_t status)
{
	struct blk_counters *c = &bq->ctr;

	BLK_CTR_ADD(c->ops[req->kind], 1);
	if (!req->status)
		BLK_CTR_ADD(c->errors[VIO_BLK_ERR_MALFORMED], 1);
	else if (status == VIRTIO_BLK_S_IOERR)
		BLK_CTR_ADD(c->errors[VIO_BLK_ERR_IOERR], 1);
	else if (status == VIRTIO_BLK_S_UNSUPP)
		BLK_CTR_ADD(c->errors[VIO_BLK_ERR_UNSUPP], 1);
	else if (req->kind == VIO_BLK_OP_READ)
		BLK_CTR_ADD(c->read_bytes, req->data_len);
	else if (req->kind == VIO_BLK_OP_WRITE)
		BLK_CTR_ADD(c->write_bytes, req->data_len);
	BLK_CTR_ADD(c->latency[lat_bucket(bq->now_ns - req->start_ns)], 1);
	BLK_CTR_ADD(c->latency_sum_ns, bq->now_ns - req->start_ns);
}

uint32_t blk_req_bytes(const struct blk_req *req)
{
	/* Header (16) and status (1) are not data; what is left is what moves. */
	uint32_t total = req->chain.out_bytes + req->chain.in_bytes;

	return total > 17 ? total - 17 : 0;
}

static void req_done(struct blk_queue *bq, struct blk_req *req, uint8_t status, uint32_t wlen)
{
	count_done(bq, req, status);
	/* The status byte comes after the data; push_burst publishes both with release. */
	if (req->status)
		*req->status = status;
	bq->used[bq->nused++] = (struct vio_used_elem){
		.id = req->chain.id, .ndesc = req->chain.ndesc, .len = req->status ? wlen : 0,
	};
	bq->free_stack[bq->nfree++] = (uint16_t)(req - bq->reqs);
}

void blk_push_used(struct blk_queue *bq)
{
	if (!bq->nused)
		return;
	vio_virtq_push_burst(bq->ctx.vq, bq->used, bq->nused);
	bq->nused = 0;
	if (vio_virtq_device_should_notify(bq->ctx.vq) && bq->ctx.notify)
		bq->ctx.notify(bq->ctx.notify_opaque);
}

void blk_engine_done(struct blk_queue *bq, const struct blk_engine_cpl *c)
{
	struct blk_req *req = c->tag;
	bool ok = c->result >= 0 && (uint32_t)c->result == req->data_len;

	bq->inflight--;
	req_done(bq, req, ok ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR,
		 req->wlen);
}

int blk_reap(struct vio_blk *blk, struct blk_queue *bq)
{
	int total = 0, got;

	while (bq->inflight) {
		got = blk->eng->ops->reap(bq->eq, bq->cpls, BLK_BURST, false);
		if (got <= 0)
			break;
		/* One clock read for the batch: the latency of everything in it. */
		bq->now_ns = blk_now_ns();
		for (int i = 0; i < got; i++)
			blk_engine_done(bq, &bq->cpls[i]);
		total += got;
		if (got < BLK_BURST)
			break;
	}
	return total;
}

/* ---- request parsing ---- */

static bool range_ok(const struct vio_blk *blk, uint64_t sector, uint64_t nsectors)
{
	uint64_t cap = atomic_load_explicit(&blk->capacity, memory_order_relaxed);

	return sector <= cap && nsectors <= cap - sector;
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

static uint8_t do_rw(struct vio_blk *blk, struct blk_queue *bq, struct blk_req *req,
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
	rc = blk->eng->ops->rw(bq->eq, write, data, ndata, blk->base + off, req);
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
			.off = blk->base + (seg[i].sector << SECTOR_SHIFT),
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
static uint8_t start_req(struct vio_blk *blk, struct blk_queue *bq, struct blk_req *req)
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

	req->kind = hdr.type == VIRTIO_BLK_T_IN ? VIO_BLK_OP_READ :
		    hdr.type == VIRTIO_BLK_T_OUT ? VIO_BLK_OP_WRITE :
		    hdr.type == VIRTIO_BLK_T_FLUSH ? VIO_BLK_OP_FLUSH :
		    hdr.type == VIRTIO_BLK_T_GET_ID ? VIO_BLK_OP_GET_ID :
		    hdr.type == VIRTIO_BLK_T_DISCARD ? VIO_BLK_OP_DISCARD :
		    hdr.type == VIRTIO_BLK_T_WRITE_ZEROES ? VIO_BLK_OP_WRITE_ZEROES : VIO_BLK_OP_OTHER;
	switch (hdr.type) {
	case VIRTIO_BLK_T_IN:
		if (out_data)
			return VIRTIO_BLK_S_IOERR;
		return do_rw(blk, bq, req, false, hdr.sector, in, nin, in_data);
	case VIRTIO_BLK_T_OUT:
		if (in_data || blk->readonly)
			return VIRTIO_BLK_S_IOERR;
		out = iov_skip(out, &nout, sizeof(hdr));
		return do_rw(blk, bq, req, true, hdr.sector, out, nout, out_data);
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

void blk_handle_chain(struct vio_blk *blk, struct blk_queue *bq, struct blk_req *req)
{
	struct vio_chain *c = &req->chain;
	uint8_t st;

	req->status = NULL;
	req->kind = VIO_BLK_OP_OTHER;
	req->data_len = 0;
	if (c->status || c->nin == 0) {
		/* Iovecs cut short (the status descriptor among those lost), or none writable. */
		blk_log_once(bq, c->status ? "request with too many segments"
					      : "request without a status byte");
		req_done(bq, req, 0, 0);
		return;
	}
	st = start_req(blk, bq, req);
	if (st != VIRTIO_BLK_S_OK)
		req_done(bq, req, st, 1);
}

