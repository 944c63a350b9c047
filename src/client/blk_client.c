/* SPDX-License-Identifier: MIT */
/*
 * The virtio-blk driver side: builds requests (header, data, status) in
 * shared memory, posts them through the core's driver-side queue API and
 * hands completions back. Knows no transport; never trusts the device's
 * used length, and never allocates after creation.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vio/blk_client.h"

#define REAP_BURST 32
#define STATUS_UNSET 0xff

/* Per-request bytes in shared memory. */
struct slot_shm {
	struct virtio_blk_outhdr hdr;
	struct virtio_blk_discard_write_zeroes seg;
	uint8_t status;
	uint8_t pad[15];
};

struct slot {
	vio_blk_client_cb *cb; /* NULL for an abandoned sync request */
	void *opaque;
	struct slot_shm *shm;
	struct slot *next_free;
	bool busy;
};

struct client_queue {
	struct vio_drv_ctx ctx;
	struct slot *slots;
	unsigned nslots, inflight;
	struct slot *free;
};

struct vio_blk_client {
	unsigned nqueues;
	struct client_queue q[];
};

size_t vio_blk_client_area_size(const struct vio_drv_ctx *ctxs, unsigned nqueues)
{
	size_t n = 0;

	for (unsigned i = 0; i < nqueues; i++)
		n += vio_virtq_num_free(ctxs[i].vq);
	return n * sizeof(struct slot_shm);
}

void vio_blk_client_free(struct vio_blk_client *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i < c->nqueues; i++)
		free(c->q[i].slots);
	free(c);
}

int vio_blk_client_new(const struct vio_drv_ctx *ctxs, unsigned nqueues, void *area,
		       size_t area_len, struct vio_blk_client **out)
{
	struct slot_shm *shm = area;
	struct vio_blk_client *c;
	size_t need;
	uint64_t gpa;

	if (!nqueues || !ctxs || !area || (uintptr_t)area % 8)
		return -EINVAL;
	need = vio_blk_client_area_size(ctxs, nqueues);
	if (area_len < need)
		return -EINVAL;
	for (unsigned i = 0; i < nqueues; i++) {
		if (!ctxs[i].vq || !ctxs[i].mem)
			return -EINVAL;
		if (vio_mem_host_to_gpa(ctxs[i].mem, area, need, &gpa))
			return -EFAULT;
	}
	c = calloc(1, sizeof(*c) + nqueues * sizeof(c->q[0]));
	if (!c)
		return -ENOMEM;
	c->nqueues = nqueues;
	for (unsigned i = 0; i < nqueues; i++) {
		struct client_queue *cq = &c->q[i];

		cq->ctx = ctxs[i];
		cq->nslots = vio_virtq_num_free(ctxs[i].vq);
		cq->slots = calloc(cq->nslots ? cq->nslots : 1, sizeof(*cq->slots));
		if (!cq->slots) {
			vio_blk_client_free(c);
			return -ENOMEM;
		}
		for (unsigned s = cq->nslots; s-- > 0;) {
			cq->slots[s].shm = shm + s;
			cq->slots[s].next_free = cq->free;
			cq->free = &cq->slots[s];
		}
		shm += cq->nslots;
	}
	*out = c;
	return 0;
}

static int submit_slot(struct vio_blk_client *c, unsigned q, const struct vio_blk_client_req *r,
		       vio_blk_client_cb *cb, void *opaque, struct slot **out)
{
	struct iovec iov[VIO_BLK_CLIENT_MAX_IOV + 3];
	struct client_queue *cq;
	struct slot *s;
	unsigned n = 0, nout;
	bool data_in, dwz;
	int rc;

	if (q >= c->nqueues || !r || r->niov > VIO_BLK_CLIENT_MAX_IOV || (r->niov && !r->iov))
		return -EINVAL;
	cq = &c->q[q];
	s = cq->free;
	if (!s)
		return -ENOSPC;
	data_in = r->type == VIRTIO_BLK_T_IN || r->type == VIRTIO_BLK_T_GET_ID;
	dwz = r->type == VIRTIO_BLK_T_DISCARD || r->type == VIRTIO_BLK_T_WRITE_ZEROES;

	s->shm->hdr = (struct virtio_blk_outhdr){ .type = r->type, .sector = r->sector };
	s->shm->status = STATUS_UNSET;
	iov[n++] = (struct iovec){ &s->shm->hdr, sizeof(s->shm->hdr) };
	if (dwz) {
		s->shm->seg = (struct virtio_blk_discard_write_zeroes){
			.sector = r->seg_sector, .num_sectors = r->num_sectors, .flags = r->flags,
		};
		iov[n++] = (struct iovec){ &s->shm->seg, sizeof(s->shm->seg) };
	}
	if (!data_in)
		for (unsigned i = 0; i < r->niov; i++)
			iov[n++] = r->iov[i];
	nout = n;
	if (data_in)
		for (unsigned i = 0; i < r->niov; i++)
			iov[n++] = r->iov[i];
	iov[n++] = (struct iovec){ &s->shm->status, 1 };

	rc = vio_virtq_add(cq->ctx.vq, cq->ctx.mem, iov, nout, n - nout, s);
	if (rc)
		return rc;
	cq->free = s->next_free;
	s->cb = cb;
	s->opaque = opaque;
	s->busy = true;
	cq->inflight++;
	if (out)
		*out = s;
	return 0;
}

int vio_blk_client_submit(struct vio_blk_client *c, unsigned q, const struct vio_blk_client_req *r,
			  vio_blk_client_cb *cb, void *opaque)
{
	return submit_slot(c, q, r, cb, opaque, NULL);
}

void vio_blk_client_kick(struct vio_blk_client *c, unsigned q)
{
	struct client_queue *cq;

	if (q >= c->nqueues)
		return;
	cq = &c->q[q];
	if (vio_virtq_kick_prepare(cq->ctx.vq) && cq->ctx.kick)
		cq->ctx.kick(cq->ctx.kick_opaque);
}

int vio_blk_client_poll(struct vio_blk_client *c, unsigned q)
{
	void *cookies[REAP_BURST];
	uint32_t lens[REAP_BURST];
	struct client_queue *cq;
	int total = 0, got;

	if (q >= c->nqueues)
		return -EINVAL;
	cq = &c->q[q];
	do {
		got = vio_virtq_get_used_burst(cq->ctx.vq, cookies, lens, REAP_BURST);
		if (got < 0)
			return got;
		for (int i = 0; i < got; i++) {
			struct slot *s = cookies[i];
			vio_blk_client_cb *cb = s->cb;
			void *opaque = s->opaque;
			int status = lens[i] ? s->shm->status : -EIO;

			/* Free first: the callback may submit again. */
			s->busy = false;
			s->next_free = cq->free;
			cq->free = s;
			cq->inflight--;
			if (cb)
				cb(opaque, status, lens[i]);
		}
		total += got;
	} while (got == REAP_BURST);
	return total;
}

unsigned vio_blk_client_inflight(const struct vio_blk_client *c, unsigned q)
{
	return q < c->nqueues ? c->q[q].inflight : 0;
}

struct sync_state {
	bool done;
	int status;
	uint32_t len;
};

static void sync_cb(void *opaque, int status, uint32_t len)
{
	struct sync_state *st = opaque;

	st->done = true;
	st->status = status;
	st->len = len;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void wait_call(struct client_queue *cq, int ms)
{
	struct pollfd pfd = { .fd = cq->ctx.call_fd, .events = POLLIN };
	uint64_t v;

	if (cq->ctx.call_fd < 0) {
		struct timespec ts = { 0, 100000 };

		nanosleep(&ts, NULL);
		return;
	}
	/* Ask for an interrupt; if used buffers slipped in meanwhile, reap instead of sleeping. */
	if (!vio_virtq_driver_enable_cb(cq->ctx.vq))
		return;
	if (poll(&pfd, 1, ms) > 0 && read(cq->ctx.call_fd, &v, sizeof(v)) < 0)
		return;
}

int vio_blk_client_sync(struct vio_blk_client *c, unsigned q, const struct vio_blk_client_req *r,
			int (*progress)(void *opaque), void *progress_opaque, unsigned timeout_ms,
			uint32_t *len)
{
	struct sync_state st = { 0 };
	uint64_t deadline = now_ms() + timeout_ms;
	struct slot *s;
	int rc;

	rc = submit_slot(c, q, r, sync_cb, &st, &s);
	if (rc)
		return rc;
	vio_blk_client_kick(c, q);
	for (;;) {
		rc = vio_blk_client_poll(c, q);
		if (st.done)
			break;
		if (rc < 0 || now_ms() >= deadline) {
			/* Still posted: make its eventual completion harmless. */
			s->cb = NULL;
			return rc < 0 ? rc : -ETIMEDOUT;
		}
		if (progress)
			progress(progress_opaque);
		else
			wait_call(&c->q[q], 10);
	}
	if (len)
		*len = st.len;
	return st.status;
}
