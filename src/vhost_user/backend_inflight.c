/* SPDX-License-Identifier: MIT */
/*
 * The backend's inflight region (VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD): a
 * shared memory file in which every chain taken from a ring is recorded
 * until it is returned used, so that a backend restarted after a crash pops
 * again exactly the chains its predecessor never completed. Owns
 * GET_INFLIGHT_FD / SET_INFLIGHT_FD, the region's two layouts (split and
 * packed, as qemu's docs/interop/vhost-user.rst describes them, so another
 * backend can take over a region this one wrote) and its restore.
 *
 * Design: the recording happens in the transport, around pop and push,
 * through the core's tracker hook (struct vio_virtq_tracker): the queue
 * calls us on its owner thread right after a pop and around each push. The
 * device (virtio-blk or any other) learns nothing: it pops and pushes as
 * ever. On restart the region is read once, when a ring starts: positions
 * come from it and the chains still marked in flight are handed to the
 * queue as its redo list (vio_virtq_set_redo), which pop serves first
 * through the queue's one walker (split: by head index; packed: from the
 * slot copies the region keeps, since used descriptors may since have
 * overwritten the ring).
 *
 * Never trusts the region: the front-end maps it too and may have written
 * anything. The restore checks every index, count and link against the
 * queue size, each entry is visited at most once, and a region that does
 * not add up fails the queue (the device reports NEEDS_RESET) instead of
 * being used. The data path never reads the region back: what it needs
 * (packed free list, chain ends, the head of each buffer id) it keeps in a
 * private mirror of what it wrote. Never touches a ring itself (the core's
 * restart calls do) and never blocks or allocates on the data path.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend_internal.h"
#include "core/virtq_internal.h"

#define INFLIGHT_VERSION 1
#define INFLIGHT_ALIGN 64u

/* ---- the region layouts (the spec's, native byte order) ---- */

struct infl_split_desc {
	uint8_t inflight;
	uint8_t padding[5];
	uint16_t next;    /* link of the last batch of used heads */
	uint64_t counter; /* order in which heads were taken */
};

struct infl_split {
	uint64_t features;
	uint16_t version;
	uint16_t desc_num;
	uint16_t last_batch_head;
	uint16_t used_idx;
	struct infl_split_desc desc[];
};

struct infl_packed_desc {
	uint8_t inflight;
	uint8_t padding;
	uint16_t next; /* free list, or the next descriptor of a chain */
	uint16_t last; /* head entry: the chain's last entry */
	uint16_t num;  /* head entry: the chain's length */
	uint64_t counter;
	uint16_t id;
	uint16_t flags;
	uint32_t len;
	uint64_t addr;
};

struct infl_packed {
	uint64_t features;
	uint16_t version;
	uint16_t desc_num;
	uint16_t free_head;
	uint16_t old_free_head;
	uint16_t used_idx;
	uint16_t old_used_idx;
	uint8_t used_wrap_counter;
	uint8_t old_used_wrap_counter;
	uint8_t padding[7];
	struct infl_packed_desc desc[];
};

_Static_assert(sizeof(struct infl_split_desc) == 16, "split inflight entry");
_Static_assert(offsetof(struct infl_split, desc) == 16, "split inflight header");
_Static_assert(sizeof(struct infl_packed_desc) == 32, "packed inflight entry");
_Static_assert(offsetof(struct infl_packed, desc) == 32, "packed inflight header");

/* The shared fields are read and written once each: the front-end maps them too. */
#define RD(p) VQ_LOAD(&(p))
#define WR(p, v) VQ_STORE(&(p), (v))
/* Program order of our record against the ring is what a crash leaves behind. */
#define ORDER() atomic_signal_fence(memory_order_seq_cst)

/* Bytes one queue takes (the header's fields, then the entries, rounded to 64). */
size_t vhu_inflight_stride(bool packed, uint16_t qsize)
{
	size_t n = packed ? sizeof(struct infl_packed_desc) * qsize + 8 + 2 * 6 + 9
			  : sizeof(struct infl_split_desc) * qsize + 8 + 2 * 4;

	return (n + INFLIGHT_ALIGN - 1) & ~(size_t)(INFLIGHT_ALIGN - 1);
}

/* ---- per-queue state ---- */

static void iq_free(struct vhu_inflight_q *iq)
{
	free(iq->next);
	free(iq->last);
	free(iq->head_of);
	free(iq->scratch);
	memset(iq, 0, sizeof(*iq));
}

static int iq_init(struct vhu_inflight_q *iq, void *region, bool packed, uint16_t size)
{
	memset(iq, 0, sizeof(*iq));
	iq->region = region;
	iq->packed = packed;
	iq->size = size;
	if (!packed)
		return 0;
	iq->next = calloc(size, sizeof(*iq->next));
	iq->last = calloc(size, sizeof(*iq->last));
	iq->head_of = calloc(size, sizeof(*iq->head_of));
	iq->scratch = calloc(size, sizeof(*iq->scratch));
	if (!iq->next || !iq->last || !iq->head_of || !iq->scratch) {
		iq_free(iq);
		return -ENOMEM;
	}
	return 0;
}

void vhu_inflight_drop(struct vio_vhu_backend *b)
{
	struct vhu_inflight *in = &b->inflight;

	for (unsigned i = 0; i < VIO_VHU_MAX_QUEUES; i++)
		iq_free(&b->q[i].iq);
	if (in->map)
		munmap(in->map, in->map_len);
	memset(in, 0, sizeof(*in));
}

/* ---- split: the data path ---- */

static bool split_popped(void *opaque, const struct vio_chain *chains, unsigned n, uint16_t slot)
{
	struct vhu_inflight_q *iq = opaque;
	struct infl_split *r = iq->region;

	(void)slot;
	for (unsigned i = 0; i < n; i++) {
		struct infl_split_desc *d = &r->desc[chains[i].id]; /* the walker checked the id */

		WR(d->counter, iq->counter++);
		ORDER();
		WR(d->inflight, (uint8_t)1);
	}
	return true;
}

static bool split_pushing(void *opaque, const struct vio_used_elem *elems, unsigned n)
{
	struct vhu_inflight_q *iq = opaque;
	struct infl_split *r = iq->region;

	for (unsigned i = 0; i < n; i++) {
		if (elems[i].id >= iq->size)
			return false;
		WR(r->desc[elems[i].id].next, iq->batch_head);
		iq->batch_head = elems[i].id;
	}
	WR(r->last_batch_head, iq->batch_head);
	ORDER();
	return true;
}

static bool split_pushed(void *opaque, const struct vio_used_elem *elems, unsigned n)
{
	struct vhu_inflight_q *iq = opaque;
	struct infl_split *r = iq->region;
	struct vio_virtq_pos pos;

	ORDER();
	for (unsigned i = 0; i < n; i++)
		WR(r->desc[elems[i].id].inflight, (uint8_t)0);
	ORDER();
	vio_virtq_get_pos(iq->vq, &pos);
	WR(r->used_idx, pos.used_idx);
	return true;
}

static const struct vio_virtq_tracker split_tracker = {
	.popped = split_popped, .pushing = split_pushing, .pushed = split_pushed,
};

/* ---- packed: the data path ---- */

/* Record one chain: its slots' copies go to free entries, the first of them is its head. */
static bool packed_record(struct vhu_inflight_q *iq, const struct vio_chain *c)
{
	struct infl_packed *r = iq->region;
	uint16_t h = iq->free_head, e = h;

	if (h >= iq->size)
		return false;
	WR(r->desc[h].num, (uint16_t)0);
	WR(r->desc[h].counter, iq->counter++);
	WR(r->desc[h].inflight, (uint8_t)1);
	for (uint16_t j = 0; j < c->ndesc; j++) {
		const struct pvirtq_desc *d = &iq->scratch[j];

		if (e >= iq->size)
			return false; /* our own free list ran dry: the ring broke its size */
		if (j + 1 == c->ndesc) {
			WR(r->desc[h].last, e);
			iq->last[h] = e;
		}
		WR(r->desc[h].num, (uint16_t)(j + 1));
		WR(r->desc[e].addr, d->addr);
		WR(r->desc[e].len, d->len);
		WR(r->desc[e].flags, d->flags);
		WR(r->desc[e].id, d->id);
		e = iq->next[e];
		iq->free_head = e;
		WR(r->free_head, e);
	}
	ORDER();
	WR(r->old_free_head, iq->free_head);
	iq->head_of[c->id] = h; /* the walker checked the id */
	return true;
}

static bool packed_popped(void *opaque, const struct vio_chain *chains, unsigned n, uint16_t slot)
{
	struct vhu_inflight_q *iq = opaque;

	for (unsigned i = 0; i < n; i++) {
		const struct vio_chain *c = &chains[i];

		vio_virtq_read_slots_packed(iq->vq, slot, c->ndesc, iq->scratch);
		if (!packed_record(iq, c))
			return false;
		slot = (uint16_t)(((uint32_t)slot + c->ndesc) % iq->size);
	}
	return true;
}

static bool packed_pushing(void *opaque, const struct vio_used_elem *elems, unsigned n)
{
	struct vhu_inflight_q *iq = opaque;
	struct infl_packed *r = iq->region;
	struct vio_virtq_pos pos;
	uint32_t used;

	vio_virtq_get_pos(iq->vq, &pos);
	used = pos.used_idx;
	for (unsigned i = 0; i < n; i++) {
		uint16_t h, l;

		if (elems[i].id >= iq->size)
			return false;
		h = iq->head_of[elems[i].id];
		l = iq->last[h];
		iq->next[l] = iq->free_head;
		WR(r->desc[l].next, iq->free_head);
		iq->free_head = h;
		WR(r->free_head, h);
		/* As the ring advances: the chain's slots (a 0 or oversize count takes one). */
		used += elems[i].ndesc && elems[i].ndesc <= iq->size ? elems[i].ndesc : 1;
		if (used >= iq->size) {
			used -= iq->size;
			pos.used_wrap = !pos.used_wrap;
		}
	}
	WR(r->used_idx, (uint16_t)used);
	WR(r->used_wrap_counter, (uint8_t)pos.used_wrap);
	ORDER();
	return true;
}

static bool packed_pushed(void *opaque, const struct vio_used_elem *elems, unsigned n)
{
	struct vhu_inflight_q *iq = opaque;
	struct infl_packed *r = iq->region;
	struct vio_virtq_pos pos;

	ORDER();
	for (unsigned i = 0; i < n; i++)
		WR(r->desc[iq->head_of[elems[i].id]].inflight, (uint8_t)0);
	ORDER();
	vio_virtq_get_pos(iq->vq, &pos);
	WR(r->old_free_head, iq->free_head);
	WR(r->old_used_idx, pos.used_idx);
	WR(r->old_used_wrap_counter, (uint8_t)pos.used_wrap);
	return true;
}

static const struct vio_virtq_tracker packed_tracker = {
	.popped = packed_popped, .pushing = packed_pushing, .pushed = packed_pushed,
};

/* ---- restore (control thread, ring set up, nothing popped yet) ---- */

struct stamped {
	uint64_t counter;
	uint16_t head;
};

static int by_counter(const void *a, const void *b)
{
	const struct stamped *x = a, *y = b;

	return x->counter < y->counter ? -1 : x->counter > y->counter;
}

/* A corrupt region: say what, and fail the queue. */
static int corrupt(struct vhu_queue *q, const char *what, unsigned v)
{
	vio_warn(q->name, "inflight region corrupt (%s %u): queue fails", what, v);
	return -EBADMSG;
}

static int restore_split(struct vhu_queue *q, struct vhu_inflight_q *iq)
{
	struct infl_split *r = iq->region;
	uint16_t size = iq->size, n = 0;
	struct vio_virtq_pos pos;
	struct stamped *s;
	struct vio_virtq_redo *redo;
	uint64_t max = 0;
	int ret;

	vio_virtq_get_pos(q->vq, &pos); /* split: used_idx is the ring's own */
	iq->batch_head = 0;
	if (RD(r->version) == 0) {
		/* A fresh region: nothing was ever recorded in it. */
		for (uint16_t i = 0; i < size; i++)
			memset(&r->desc[i], 0, sizeof(r->desc[i]));
		WR(r->features, (uint64_t)0);
		WR(r->desc_num, size);
		WR(r->last_batch_head, (uint16_t)0);
		WR(r->used_idx, pos.used_idx);
		ORDER();
		WR(r->version, (uint16_t)INFLIGHT_VERSION);
		iq->counter = 1;
		return 0;
	}
	if (RD(r->version) != INFLIGHT_VERSION)
		return corrupt(q, "version", RD(r->version));
	if (RD(r->desc_num) != size)
		return corrupt(q, "queue size", RD(r->desc_num));
	if (RD(r->used_idx) != pos.used_idx) {
		/* The last batch reached the used ring but not the record: finish it. */
		uint16_t batch = (uint16_t)(pos.used_idx - RD(r->used_idx));
		uint16_t i = RD(r->last_batch_head);

		if (batch > size)
			return corrupt(q, "used index behind by", batch);
		for (uint16_t k = 0; k < batch; k++) {
			if (i >= size)
				return corrupt(q, "batch link", i);
			WR(r->desc[i].inflight, (uint8_t)0);
			i = RD(r->desc[i].next);
		}
		WR(r->used_idx, pos.used_idx);
	}
	s = malloc(sizeof(*s) * size);
	redo = malloc(sizeof(*redo) * size);
	if (!s || !redo) {
		free(s);
		free(redo);
		return -ENOMEM;
	}
	for (uint16_t i = 0; i < size; i++) {
		uint8_t f = RD(r->desc[i].inflight);

		if (f > 1) {
			free(s);
			free(redo);
			return corrupt(q, "inflight flag", f);
		}
		if (f) {
			s[n].counter = RD(r->desc[i].counter);
			s[n].head = i;
			if (s[n].counter > max)
				max = s[n].counter;
			n++;
		}
	}
	qsort(s, n, sizeof(*s), by_counter);
	for (uint16_t i = 0; i < n; i++)
		redo[i] = (struct vio_virtq_redo){ .head = s[i].head };
	/* Every entry the ring handed out is either used or in the record. */
	pos.avail_idx = (uint16_t)(pos.used_idx + n);
	ret = vio_virtq_set_pos(q->vq, &pos);
	if (!ret)
		ret = vio_virtq_set_redo(q->vq, redo, n);
	free(s);
	free(redo);
	iq->counter = max + 1;
	if (!ret && n)
		vio_info(q->name, "resubmitting %u requests left in flight", n);
	return ret;
}

/* Write the packed free list: every entry not in used[] (chain entries), in index order. */
static void packed_rebuild_free(struct vhu_inflight_q *iq, const uint8_t *used)
{
	struct infl_packed *r = iq->region;
	uint16_t head = iq->size, prev = iq->size;

	for (uint16_t i = 0; i < iq->size; i++) {
		if (used[i])
			continue;
		WR(r->desc[i].inflight, (uint8_t)0);
		if (prev < iq->size) {
			iq->next[prev] = i;
			WR(r->desc[prev].next, i);
		} else {
			head = i;
		}
		prev = i;
	}
	if (prev < iq->size) {
		iq->next[prev] = iq->size; /* the end: never followed while the ring keeps its size */
		WR(r->desc[prev].next, iq->size);
	}
	iq->free_head = head;
	WR(r->free_head, head);
	WR(r->old_free_head, head);
}

static int restore_packed(struct vhu_queue *q, struct vhu_inflight_q *iq)
{
	struct infl_packed *r = iq->region;
	uint16_t size = iq->size, n = 0, used_idx, free_head;
	uint32_t total = 0;
	bool used_wrap;
	struct vio_virtq_pos pos;
	struct stamped *s = NULL;
	struct vio_virtq_redo *redo = NULL;
	struct pvirtq_desc *copies = NULL;
	uint8_t *taken = NULL, *ids = NULL;
	uint64_t max = 0;
	int ret;

	vio_virtq_get_pos(q->vq, &pos); /* the front-end's base, for a fresh region */
	if (RD(r->version) == 0) {
		for (uint16_t i = 0; i < size; i++)
			memset(&r->desc[i], 0, sizeof(r->desc[i]));
		WR(r->features, (uint64_t)0);
		WR(r->desc_num, size);
		WR(r->used_idx, pos.used_idx);
		WR(r->old_used_idx, pos.used_idx);
		WR(r->used_wrap_counter, (uint8_t)pos.used_wrap);
		WR(r->old_used_wrap_counter, (uint8_t)pos.used_wrap);
		taken = calloc(size, 1);
		if (!taken)
			return -ENOMEM;
		packed_rebuild_free(iq, taken);
		free(taken);
		ORDER();
		WR(r->version, (uint16_t)INFLIGHT_VERSION);
		iq->counter = 1;
		return 0;
	}
	if (RD(r->version) != INFLIGHT_VERSION)
		return corrupt(q, "version", RD(r->version));
	if (RD(r->desc_num) != size)
		return corrupt(q, "queue size", RD(r->desc_num));
	used_idx = RD(r->old_used_idx);
	used_wrap = RD(r->old_used_wrap_counter);
	if (used_idx >= size || RD(r->used_idx) >= size || RD(r->old_used_wrap_counter) > 1 ||
	    RD(r->used_wrap_counter) > 1)
		return corrupt(q, "used index", used_idx);
	free_head = RD(r->old_free_head);
	if (RD(r->used_idx) != used_idx || RD(r->used_wrap_counter) != used_wrap) {
		/* A push was under way: it counts if the ring shows its first slot no longer available. */
		if (!vio_virtq_slot_avail_packed(q->vq, used_idx, used_wrap)) {
			used_idx = RD(r->used_idx);
			used_wrap = RD(r->used_wrap_counter);
			free_head = RD(r->free_head);
		}
	}
	s = malloc(sizeof(*s) * size);
	redo = malloc(sizeof(*redo) * size);
	copies = malloc(sizeof(*copies) * size);
	taken = calloc(size, 1);
	ids = calloc(size, 1);
	ret = -ENOMEM;
	if (!s || !redo || !copies || !taken || !ids)
		goto out;
	/*
	 * Entries on the free list are not in flight, whatever they say: a
	 * record cut short, or chains whose push completed. The walk is
	 * bounded by the queue size; a link out of range ends it.
	 */
	for (uint16_t k = 0, e = free_head; k < size && e < size; k++) {
		WR(r->desc[e].inflight, (uint8_t)0);
		e = RD(r->desc[e].next);
	}
	/* The heads in flight, in the order they were taken. */
	for (uint16_t i = 0; i < size; i++) {
		uint8_t f = RD(r->desc[i].inflight);

		ret = f > 1 ? corrupt(q, "inflight flag", f) : 0;
		if (ret)
			goto out;
		if (f) {
			s[n].counter = RD(r->desc[i].counter);
			s[n].head = i;
			if (s[n].counter > max)
				max = s[n].counter;
			n++;
		}
	}
	qsort(s, n, sizeof(*s), by_counter);
	for (uint16_t k = 0; k < n; k++) {
		uint16_t h = s[k].head, num = RD(r->desc[h].num), e = h, last = RD(r->desc[h].last);

		if (num == 0 || num > size - total || last >= size) {
			ret = corrupt(q, "chain length", num);
			goto out;
		}
		for (uint16_t j = 0; j < num; j++) {
			if (e >= size || taken[e]) {
				ret = corrupt(q, "chain entry", e);
				goto out;
			}
			taken[e] = 1;
			copies[total + j] = (struct pvirtq_desc){
				.addr = RD(r->desc[e].addr), .len = RD(r->desc[e].len),
				.id = RD(r->desc[e].id), .flags = RD(r->desc[e].flags),
			};
			if (j + 1 < num) {
				iq->next[e] = RD(r->desc[e].next);
				e = iq->next[e];
			}
		}
		if (e != last || copies[total + num - 1].id >= size || ids[copies[total + num - 1].id]) {
			ret = corrupt(q, "chain end", e);
			goto out;
		}
		ids[copies[total + num - 1].id] = 1;
		iq->head_of[copies[total + num - 1].id] = h;
		iq->last[h] = last;
		iq->next[last] = size;
		redo[k] = (struct vio_virtq_redo){ .head = h, .ndesc = num, .descs = copies + total };
		total += num;
	}
	/* Re-link the rest as free; our position: the used one, plus every slot in flight. */
	packed_rebuild_free(iq, taken);
	WR(r->used_idx, used_idx);
	WR(r->used_wrap_counter, (uint8_t)used_wrap);
	WR(r->old_used_idx, used_idx);
	WR(r->old_used_wrap_counter, (uint8_t)used_wrap);
	pos.used_idx = used_idx;
	pos.used_wrap = used_wrap;
	pos.avail_idx = used_idx;
	pos.avail_wrap = used_wrap;
	for (uint32_t t = total; t; t--) {
		if (++pos.avail_idx == size) {
			pos.avail_idx = 0;
			pos.avail_wrap = !pos.avail_wrap;
		}
	}
	ret = vio_virtq_set_pos(q->vq, &pos);
	if (!ret)
		ret = vio_virtq_set_redo(q->vq, redo, n);
	iq->counter = max + 1;
	if (!ret && n)
		vio_info(q->name, "resubmitting %u requests left in flight", n);
out:
	free(s);
	free(redo);
	free(copies);
	free(taken);
	free(ids);
	return ret;
}

int vhu_inflight_queue_start(struct vio_vhu_backend *b, struct vhu_queue *q)
{
	struct vhu_inflight_q *iq = &q->iq;
	bool packed = vio_virtq_is_packed(q->vq);
	uint64_t one = 1;
	int r;

	if (!iq->region)
		return 0;
	if (packed != iq->packed || vio_virtq_size(q->vq) != iq->size) {
		vio_warn(q->name, "inflight region laid out for a %s ring of %u, ring is %s of %u",
			 iq->packed ? "packed" : "split", iq->size, packed ? "packed" : "split",
			 vio_virtq_size(q->vq));
		return -EBADMSG;
	}
	iq->vq = q->vq;
	r = packed ? restore_packed(q, iq) : restore_split(q, iq);
	if (r)
		return r;
	vio_virtq_set_tracker(q->vq, packed ? &packed_tracker : &split_tracker, iq);
	/*
	 * A predecessor may have published used buffers and died before it
	 * signalled them: one interrupt costs the driver a look at its ring.
	 */
	if (q->call_fd >= 0 && write(q->call_fd, &one, sizeof(one)) < 0)
		vio_dbg(q->name, "call eventfd write failed");
	(void)b;
	return 0;
}

/* ---- the two requests ---- */

/* The queue count and size a description may name for this backend. */
static bool shape_ok(const struct vio_vhu_backend *b, const struct vio_vhu_inflight *d)
{
	return d->num_queues >= 1 && d->num_queues <= b->max_queues && d->queue_size >= 1 &&
	       d->queue_size <= VIO_VIRTQ_MAX_SIZE;
}

static bool packed_agreed(const struct vio_vhu_backend *b)
{
	return (vhu_virtio_features(b) >> VIRTIO_F_RING_PACKED) & 1;
}

enum vhu_result h_get_inflight_fd(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	struct vio_vhu_inflight *d = &m->p.inflight;
	size_t size;
	int fd;

	if (!(b->protocol & VIO_BIT(VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD)) || !shape_ok(b, d)) {
		vio_warn(b->name, "GET_INFLIGHT_FD for %u queues of %u refused", d->num_queues,
			 d->queue_size);
		goto none;
	}
	size = (size_t)d->num_queues * vhu_inflight_stride(packed_agreed(b), d->queue_size);
	fd = memfd_create("vio-inflight", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0 || ftruncate(fd, (off_t)size) ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL)) {
		vio_warn(b->name, "GET_INFLIGHT_FD: cannot make the region: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		goto none;
	}
	vhu_close_fd(&b->reply_fd);
	b->reply_fd = fd; /* sent with the reply, then closed: the front-end keeps it */
	d->mmap_size = size;
	d->mmap_offset = 0;
	d->padding = 0;
	m->size = sizeof(*d);
	return VHU_REPLY;
none:
	/* Size 0: no region; the front-end carries on without one. */
	memset(d, 0, sizeof(*d));
	m->size = sizeof(*d);
	return VHU_REPLY;
}

/* Map what SET_INFLIGHT_FD describes, after checking it against the fd itself. */
static int inflight_map(struct vio_vhu_backend *b, const struct vio_vhu_inflight *d, int fd,
			struct vhu_inflight *out)
{
	long page = sysconf(_SC_PAGESIZE);
	bool packed = packed_agreed(b);
	size_t stride;
	struct stat st;
	int seals;
	void *p;

	if (!shape_ok(b, d)) {
		vio_warn(b->name, "SET_INFLIGHT_FD: %u queues of %u", d->num_queues, d->queue_size);
		return -EINVAL;
	}
	stride = vhu_inflight_stride(packed, d->queue_size);
	if (d->mmap_size != (uint64_t)stride * d->num_queues || page <= 0 ||
	    d->mmap_offset % (uint64_t)page || d->mmap_offset > UINT64_MAX - d->mmap_size) {
		vio_warn(b->name, "SET_INFLIGHT_FD: %llu bytes at %llu for %u %s queues of %u",
			 (unsigned long long)d->mmap_size, (unsigned long long)d->mmap_offset,
			 d->num_queues, packed ? "packed" : "split", d->queue_size);
		return -EINVAL;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size < d->mmap_offset + d->mmap_size) {
		vio_warn(b->name, "SET_INFLIGHT_FD: the fd is not a file of %llu bytes",
			 (unsigned long long)(d->mmap_offset + d->mmap_size));
		return -EINVAL;
	}
	/* A file the front-end could shrink under us would turn our next store into SIGBUS. */
	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 || !(seals & F_SEAL_SHRINK)) {
		vio_warn(b->name, "SET_INFLIGHT_FD: the fd is not sealed against shrinking");
		return -EINVAL;
	}
	p = mmap(NULL, d->mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)d->mmap_offset);
	if (p == MAP_FAILED) {
		vio_warn(b->name, "SET_INFLIGHT_FD: mmap: %s", strerror(errno));
		return -errno;
	}
	*out = (struct vhu_inflight){
		.map = p, .map_len = d->mmap_size, .nqueues = d->num_queues,
		.qsize = d->queue_size, .packed = packed, .stride = stride,
	};
	return 0;
}

enum vhu_result h_set_inflight_fd(struct vio_vhu_backend *b, struct vio_vhu_msg *m)
{
	struct vhu_inflight in;
	int r;

	if (!(b->protocol & VIO_BIT(VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD))) {
		vio_warn(b->name, "SET_INFLIGHT_FD without the protocol feature");
		return VHU_ERROR;
	}
	if (inflight_map(b, &m->p.inflight, m->fds[0], &in))
		return VHU_ERROR;
	/* Rings restart from the new region: take them back first. */
	vhu_pause_all(b);
	for (unsigned i = 0; i < b->max_queues; i++)
		vhu_queue_invalidate(&b->q[i]);
	vhu_inflight_drop(b);
	b->inflight = in;
	for (unsigned i = 0; i < in.nqueues; i++) {
		r = iq_init(&b->q[i].iq, (uint8_t *)in.map + (size_t)i * in.stride, in.packed,
			    in.qsize);
		if (r) {
			vio_warn(b->name, "SET_INFLIGHT_FD: %s", strerror(-r));
			vhu_inflight_drop(b);
			vhu_start_all(b);
			return VHU_ERROR;
		}
	}
	vio_dbg(b->name, "inflight region: %u %s queues of %u", in.nqueues,
		in.packed ? "packed" : "split", in.qsize);
	vhu_start_all(b);
	return VHU_OK;
}
