/* SPDX-License-Identifier: MIT */
/*
 * The split virtqueue layout (virtio 1.2, 2.7): the device side (chain walker,
 * used ring, notification decisions) and the driver side (descriptor
 * allocation, available ring, reaping). The walker is the only code that
 * follows `next` or opens an indirect table. Nothing here trusts a value read
 * from the rings, allocates, blocks, or divides on the data path.
 */
#include <errno.h>
#include <string.h>

#include "mem_internal.h"
#include "virtq_internal.h"

/*
 * Barriers, by the pairs they form (each comment below names its letter):
 *  A  driver: release store of avail->idx after descriptors and ring entries
 *     <-> device: acquire load of avail->idx before reading them.
 *  B  device: release store of used->idx after the used entries
 *     <-> driver: acquire load of used->idx before reading them.
 *  C  driver: avail->idx store, full fence, read avail_event / used->flags
 *     <-> device: avail_event / used->flags store, full fence, read avail->idx.
 *  D  device: used->idx store, full fence, read used_event / avail->flags
 *     <-> driver: used_event / avail->flags store, full fence, read used->idx.
 * C and D are store-fence-load on both sides, so at least one side sees the
 * other's store: a kick or an interrupt is never lost while the peer sleeps.
 */

static inline uint16_t *used_event_split(const struct vio_virtq *vq)
{
	return &vq->l.split.avail->ring[vq->size];
}

static inline uint16_t *avail_event_split(const struct vio_virtq *vq)
{
	return (uint16_t *)&vq->l.split.used->ring[vq->size];
}

static inline size_t align_up_split(size_t x, size_t a)
{
	return (x + a - 1) & ~(a - 1);
}

/* ---------------------------------------------------------------------- */
/* Sizing, setup, hand-over                                                */
/* ---------------------------------------------------------------------- */

static size_t avail_off_split(uint16_t size)
{
	return align_up_split(16u * (size_t)size, VIRTQ_AVAIL_ALIGN);
}

static size_t used_off_split(uint16_t size)
{
	return align_up_split(avail_off_split(size) + virtq_avail_bytes(size), VIRTQ_USED_ALIGN);
}

size_t vio_virtq_area_size_split(uint16_t size)
{
	/* Rounded to 16 so indirect tables placed after the rings stay aligned. */
	return align_up_split(used_off_split(size) + virtq_used_bytes(size), 16);
}

int vio_virtq_resolve_split(struct vio_virtq *vq, const struct vio_mem *mem)
{
	struct vio_virtq_split *s = &vq->l.split;
	void *desc, *avail, *used;

	/* The driver's rings live in its own area; there is nothing to look up. */
	if (vq->is_driver)
		return 0;
	desc = vio_mem_translate(mem, vq->addrs.desc, 16ull * vq->size);
	avail = vio_mem_translate(mem, vq->addrs.driver, virtq_avail_bytes(vq->size));
	used = vio_mem_translate(mem, vq->addrs.device, virtq_used_bytes(vq->size));
	if (!desc || !avail || !used) {
		/* Never keep pointers into a map that no longer holds the rings. */
		s->desc = NULL;
		s->avail = NULL;
		s->used = NULL;
		return -EFAULT;
	}
	/* Atomic ring accesses need naturally aligned host addresses too. */
	if (((uintptr_t)desc & 7) || ((uintptr_t)avail & 1) || ((uintptr_t)used & 3)) {
		s->desc = NULL;
		s->avail = NULL;
		s->used = NULL;
		return -EINVAL;
	}
	s->desc = desc;
	s->avail = avail;
	s->used = used;
	if (!s->started) {
		/* Continue from the ring's used index so a restarted backend resumes. */
		s->last_avail_idx = 0;
		s->avail_idx_seen = 0;
		s->used_idx_shadow = VQ_LOAD(&s->used->idx);
		s->signalled_used = s->used_idx_shadow;
		s->started = true;
	}
	return 0;
}

uint32_t vio_virtq_get_base_split(const struct vio_virtq *vq)
{
	return vq->l.split.last_avail_idx;
}

int vio_virtq_set_base_split(struct vio_virtq *vq, uint32_t base)
{
	struct vio_virtq_split *s = &vq->l.split;

	if (base > UINT16_MAX)
		return -EINVAL;
	s->last_avail_idx = (uint16_t)base;
	s->avail_idx_seen = (uint16_t)base; /* nothing known: the next pop reads avail->idx */
	if (s->used) {
		s->used_idx_shadow = VQ_LOAD(&s->used->idx);
		s->signalled_used = s->used_idx_shadow;
	}
	return 0;
}

void vio_virtq_driver_layout_split(struct vio_virtq *vq, void *area, uint64_t gpa)
{
	struct vio_virtq_split *s = &vq->l.split;
	uint16_t size = vq->size;

	s->desc = area;
	s->avail = (struct virtq_avail *)((char *)area + avail_off_split(size));
	s->used = (struct virtq_used *)((char *)area + used_off_split(size));
	vq->addrs.desc = gpa;
	vq->addrs.driver = gpa + avail_off_split(size);
	vq->addrs.device = gpa + used_off_split(size);
	s->free_head = 0;
	s->avail_idx_shadow = 0;
	s->kicked_avail = 0;
	s->last_used_idx = 0;
	s->used_idx_seen = 0;
	s->avail_flags_shadow = 0;
	s->batch_left = 0;
	/* Free list through drv[].next; IN_ORDER ignores it and walks the table in order. */
	for (uint32_t i = 0; i < size; i++)
		vq->drv[i].next = (uint16_t)((i + 1) & (size - 1u));
}

/* ---------------------------------------------------------------------- */
/* Device side                                                             */
/* ---------------------------------------------------------------------- */

/*
 * One copy of a descriptor the driver may be rewriting under us: every field
 * is read exactly once, and only the copy is used afterwards. Tables the
 * driver placed at an address unfit for atomic loads are copied bytewise.
 */
static inline void desc_load_split(const struct virtq_desc *p, bool aligned, struct virtq_desc *d)
{
	if (__builtin_expect(aligned, 1)) {
		d->addr = VQ_LOAD(&p->addr);
		d->len = VQ_LOAD(&p->len);
		d->flags = VQ_LOAD(&p->flags);
		d->next = VQ_LOAD(&p->next);
	} else {
		memcpy(d, p, sizeof(*d));
		/* Keep the compiler from re-reading guest memory in place of the copy. */
		atomic_signal_fence(memory_order_seq_cst);
	}
}

/*
 * THE chain walker. Turns the chain at head into c->iov (readable part, then
 * writable part). Returns VIO_VQ_OK or why the chain is malformed; then
 * nothing in c but iov is meaningful and nothing was consumed.
 */
static enum vio_virtq_fault walk_chain_split(const struct vio_virtq *vq, const struct vio_mem *mem,
					     uint16_t head, struct vio_chain *c)
{
	const struct virtq_desc *tbl = vq->l.split.desc;
	uint32_t limit = vq->size;  /* entries in the table being walked */
	uint32_t budget = vq->size; /* descriptors we may still visit in it: loops end */
	uint32_t i = head;
	bool aligned = true, in_indirect = false, writing = false;
	uint64_t total = 0;
	uint32_t out_bytes = 0, in_bytes = 0;
	uint16_t ndesc = 0, nout = 0, nin = 0, cap = c->iov_cap;
	int status = 0;
	struct virtq_desc d;

	if (head >= vq->size)
		return VIO_VQ_BAD_HEAD;
	for (;;) {
		if (budget-- == 0)
			return VIO_VQ_CHAIN_TOO_LONG;
		desc_load_split(&tbl[i], aligned, &d);
		if (!in_indirect)
			ndesc++;

		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			if (in_indirect)
				return VIO_VQ_NESTED_INDIRECT;
			if (!vq->indirect || d.len == 0 || d.len % 16)
				return VIO_VQ_BAD_INDIRECT;
			if (d.flags & VIRTQ_DESC_F_NEXT)
				return VIO_VQ_INDIRECT_NEXT;
			tbl = vio_mem_translate_inl(mem, d.addr, d.len);
			if (!tbl)
				return VIO_VQ_BAD_ADDR;
			aligned = ((uintptr_t)tbl & 7) == 0;
			limit = budget = d.len / 16;
			in_indirect = true;
			i = 0;
			continue;
		}

		if (d.flags & VIRTQ_DESC_F_WRITE)
			writing = true;
		else if (writing)
			return VIO_VQ_READ_AFTER_WRITE;
		total += d.len;
		if (total > UINT32_MAX)
			return VIO_VQ_LEN_OVERFLOW;
		if (d.len) {
			void *p = vio_mem_translate_inl(mem, d.addr, d.len);

			if (!p)
				return VIO_VQ_BAD_ADDR;
			if (nout + nin < cap) {
				c->iov[nout + nin].iov_base = p;
				c->iov[nout + nin].iov_len = d.len;
				if (writing) {
					nin++;
					in_bytes += d.len;
				} else {
					nout++;
					out_bytes += d.len;
				}
			} else {
				/* Keep walking: the chain must still be valid to be consumed. */
				status = -ENOBUFS;
			}
		}

		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			break;
		if (d.next >= limit)
			return VIO_VQ_BAD_HEAD;
		i = d.next;
	}
	c->id = head;
	c->ndesc = ndesc;
	c->nout = nout;
	c->nin = nin;
	c->out_bytes = out_bytes;
	c->in_bytes = in_bytes;
	c->status = status;
	return VIO_VQ_OK;
}

/* Pop chains[k, n) with the walker; n entries are known available. */
static __attribute__((noinline)) int pop_walk_split(struct vio_virtq *vq, const struct vio_mem *mem,
						    struct vio_chain *chains, unsigned k, unsigned n)
{
	struct vio_virtq_split *s = &vq->l.split;
	uint16_t mask = vq->size - 1;

	for (; k < n; k++) {
		uint16_t head = VQ_LOAD(&s->avail->ring[s->last_avail_idx & mask]);
		enum vio_virtq_fault why = walk_chain_split(vq, mem, head, &chains[k]);

		if (why != VIO_VQ_OK) {
			vio_virtq_set_fault(vq, why);
			return k ? (int)k : -EIO;
		}
		s->last_avail_idx++;
	}
	return (int)n;
}

int vio_virtq_pop_burst_split(struct vio_virtq *vq, const struct vio_mem *mem,
			      struct vio_chain *chains, unsigned n)
{
	struct vio_virtq_split *s = &vq->l.split;
	uint16_t avail_idx, ready;
	unsigned k;

	if (__builtin_expect(!s->avail, 0))
		return -EIO;
	/*
	 * Read avail->idx only when the entries seen at the last read do not
	 * fill the request: the line it sits on is the one the driver writes
	 * on every publish, and each read of it is a transfer between CPUs.
	 */
	ready = (uint16_t)(s->avail_idx_seen - s->last_avail_idx);
	if (ready < n) {
		/*
		 * Barrier A (acquire): the ring entries and descriptors written
		 * before this index are visible to the loads below (and to those
		 * of later pops up to it). Pairs with the release store of
		 * avail->idx in vio_virtq_publish_split.
		 */
		avail_idx = VQ_LOAD_ACQ(&s->avail->idx);
		ready = avail_idx - s->last_avail_idx;
		if (ready > vq->size) {
			vio_virtq_set_fault(vq, VIO_VQ_AVAIL_TOO_FAR);
			return -EIO;
		}
		s->avail_idx_seen = avail_idx;
	}
	if (n > ready)
		n = ready;
	/*
	 * Chains of one plain descriptor (no NEXT, no INDIRECT) whose buffer
	 * translates are taken here, without calls: the common case, and the
	 * walker would only repeat these checks. The first chain that is
	 * anything else (longer, indirect, empty, bad, or with no room in its
	 * iov) goes, with the rest of the burst, to the walker, which checks it
	 * in full and faults the queue if it must.
	 */
	for (k = 0; k < n; k++) {
		struct vio_chain *c = &chains[k];
		uint16_t head = VQ_LOAD(&s->avail->ring[s->last_avail_idx & (vq->size - 1)]);
		const struct virtq_desc *p;
		struct virtq_desc d;
		void *host;

		if (head >= vq->size || !c->iov_cap)
			break;
		p = &s->desc[head];
		/* One copy, each field read once (the table is aligned: resolve checked it). */
		d.flags = VQ_LOAD(&p->flags);
		if (d.flags & (VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_INDIRECT))
			break;
		d.addr = VQ_LOAD(&p->addr);
		d.len = VQ_LOAD(&p->len);
		host = vio_mem_translate_inl(mem, d.addr, d.len);
		if (!host)
			break;
		c->iov[0].iov_base = host;
		c->iov[0].iov_len = d.len;
		c->id = head;
		c->ndesc = 1;
		c->status = 0;
		if (d.flags & VIRTQ_DESC_F_WRITE) {
			c->nout = 0;
			c->nin = 1;
			c->out_bytes = 0;
			c->in_bytes = d.len;
		} else {
			c->nout = 1;
			c->nin = 0;
			c->out_bytes = d.len;
			c->in_bytes = 0;
		}
		s->last_avail_idx++;
	}
	if (__builtin_expect(k < n, 0))
		return pop_walk_split(vq, mem, chains, k, n);
	return (int)n;
}

/*
 * IN_ORDER (2.7.9): a batch may be returned as one used entry, the last
 * buffer's, with used->idx advanced by the batch size. Only when it loses
 * nothing: the earlier buffers wrote 0 bytes and the burst is consecutive in
 * ring order (each head follows the previous chain's descriptors).
 */
static bool in_order_batch_split(const struct vio_virtq *vq, const struct vio_used_elem *elems,
				 unsigned n)
{
	uint16_t mask = vq->size - 1;

	if (!vq->in_order || n < 2)
		return false;
	for (unsigned i = 0; i + 1 < n; i++) {
		if (elems[i].len || elems[i].ndesc == 0 ||
		    ((elems[i].id + elems[i].ndesc) & mask) != elems[i + 1].id)
			return false;
	}
	return true;
}

void vio_virtq_push_burst_split(struct vio_virtq *vq, const struct vio_used_elem *elems,
				unsigned n)
{
	struct vio_virtq_split *s = &vq->l.split;
	uint16_t mask = vq->size - 1;
	uint16_t idx = s->used_idx_shadow;
	struct virtq_used_elem *ring;

	if (__builtin_expect(!s->used, 0))
		return;
	ring = s->used->ring;
	if (in_order_batch_split(vq, elems, n)) {
		VQ_STORE(&ring[idx & mask].id, (uint32_t)elems[n - 1].id);
		VQ_STORE(&ring[idx & mask].len, elems[n - 1].len);
	} else {
		for (unsigned i = 0; i < n; i++) {
			VQ_STORE(&ring[(uint16_t)(idx + i) & mask].id, (uint32_t)elems[i].id);
			VQ_STORE(&ring[(uint16_t)(idx + i) & mask].len, elems[i].len);
		}
	}
	idx += (uint16_t)n;
	/*
	 * Barrier B (release): the used entries above are visible before the
	 * new used index. Pairs with the acquire load of used->idx in
	 * vio_virtq_get_used_burst_split.
	 */
	VQ_STORE_REL(&s->used->idx, idx);
	s->used_idx_shadow = idx;
}

bool vio_virtq_device_should_notify_split(struct vio_virtq *vq)
{
	struct vio_virtq_split *s = &vq->l.split;
	uint16_t old = s->signalled_used, new = s->used_idx_shadow;

	if (old == new || !s->avail)
		return false;
	s->signalled_used = new;
	/*
	 * Barrier D (full): our used->idx store is visible before we read the
	 * driver's used_event / flags. Pairs with the fence in
	 * vio_virtq_driver_enable_cb_split (used_event store, fence, used->idx load).
	 */
	VQ_FULL_FENCE();
	if (vq->event_idx)
		return vring_need_event(VQ_LOAD(used_event_split(vq)), new, old);
	return !(VQ_LOAD(&s->avail->flags) & VIRTQ_AVAIL_F_NO_INTERRUPT);
}

void vio_virtq_device_disable_notify_split(struct vio_virtq *vq)
{
	struct vio_virtq_split *s = &vq->l.split;

	/* With EVENT_IDX a stale avail_event suppresses kicks by itself. */
	if (vq->event_idx || !s->used)
		return;
	VQ_STORE(&s->used->flags, (uint16_t)VIRTQ_USED_F_NO_NOTIFY);
}

bool vio_virtq_device_enable_notify_split(struct vio_virtq *vq)
{
	struct vio_virtq_split *s = &vq->l.split;

	if (!s->used)
		return false;
	if (vq->event_idx)
		VQ_STORE(avail_event_split(vq), s->last_avail_idx);
	else
		VQ_STORE(&s->used->flags, (uint16_t)0);
	/*
	 * Barrier C (full): our avail_event / flags store is visible before we
	 * read avail->idx. Pairs with the fence in vio_virtq_kick_prepare_split
	 * (avail->idx store, fence, avail_event / flags load).
	 */
	VQ_FULL_FENCE();
	return VQ_LOAD(&s->avail->idx) != s->last_avail_idx;
}

bool vio_virtq_device_has_avail_split(struct vio_virtq *vq)
{
	struct vio_virtq_split *s = &vq->l.split;

	if (!s->avail)
		return false;
	if (s->avail_idx_seen != s->last_avail_idx)
		return true;
	/* Barrier A (acquire), as in pop: pairs with the release in publish. */
	return VQ_LOAD_ACQ(&s->avail->idx) != s->last_avail_idx;
}

/* ---------------------------------------------------------------------- */
/* Driver side                                                             */
/* ---------------------------------------------------------------------- */

static inline void desc_store_split(struct virtq_desc *p, uint64_t addr, uint32_t len,
				    uint16_t flags, uint16_t next)
{
	VQ_STORE(&p->addr, addr);
	VQ_STORE(&p->len, len);
	VQ_STORE(&p->flags, flags);
	VQ_STORE(&p->next, next);
}

/* A buffer of two or more iovecs: a chain of descriptors, or one indirect table. */
static __attribute__((noinline)) int add_chain_split(struct vio_virtq *vq,
						     const struct vio_mem *mem,
						     const struct iovec *iov, unsigned nout,
						     unsigned nin, void *cookie)
{
	struct vio_virtq_split *s = &vq->l.split;
	uint16_t mask = vq->size - 1;
	unsigned total = nout + nin;
	bool indirect = vq->indirect_max && total <= vq->indirect_max;
	unsigned needed = indirect ? 1 : total;
	uint16_t head = s->free_head, i = head, last = head;
	uint64_t gpa;

	if (needed > vq->num_free)
		return -ENOSPC;

	/*
	 * Descriptors are written before any state changes: on -EFAULT the
	 * ones touched are still free and the device cannot see them yet.
	 */
	if (indirect) {
		size_t off = (size_t)head * vq->indirect_max;
		struct virtq_desc *tbl = (struct virtq_desc *)vq->indirect_host + off;
		uint64_t tbl_gpa = vq->indirect_gpa + off * sizeof(struct virtq_desc);

		for (unsigned j = 0; j < total; j++) {
			uint16_t flags = (j >= nout ? VIRTQ_DESC_F_WRITE : 0) |
					 (j + 1 < total ? VIRTQ_DESC_F_NEXT : 0);

			if (vio_mem_host_to_gpa_inl(mem, iov[j].iov_base, iov[j].iov_len, &gpa))
				return -EFAULT;
			desc_store_split(&tbl[j], gpa, (uint32_t)iov[j].iov_len, flags,
					 j + 1 < total ? (uint16_t)(j + 1) : 0);
		}
		desc_store_split(&s->desc[head], tbl_gpa, total * (uint32_t)sizeof(*tbl),
				 VIRTQ_DESC_F_INDIRECT, 0);
	} else {
		for (unsigned j = 0; j < total; j++) {
			/* IN_ORDER: ring order, next = x + 1 wrapping to 0 (2.7.5). */
			uint16_t nx = vq->in_order ? (uint16_t)((i + 1) & mask) : vq->drv[i].next;
			uint16_t flags = (j >= nout ? VIRTQ_DESC_F_WRITE : 0) |
					 (j + 1 < total ? VIRTQ_DESC_F_NEXT : 0);

			if (vio_mem_host_to_gpa_inl(mem, iov[j].iov_base, iov[j].iov_len, &gpa))
				return -EFAULT;
			desc_store_split(&s->desc[i], gpa, (uint32_t)iov[j].iov_len, flags,
					 j + 1 < total ? nx : 0);
			last = i;
			i = nx;
		}
	}

	/* Commit. The chain's links stay in drv[].next for freeing it later. */
	s->free_head = vq->in_order ? (uint16_t)((head + needed) & mask) : vq->drv[last].next;
	vq->num_free -= needed;
	vq->drv[head].cookie = cookie;
	vq->drv[head].ndesc = (uint16_t)needed;
	VQ_STORE(&s->avail->ring[s->avail_idx_shadow & mask], head);
	s->avail_idx_shadow++;
	return 0;
}

int vio_virtq_add_split(struct vio_virtq *vq, const struct vio_mem *mem,
			const struct iovec *iov, unsigned nout, unsigned nin, void *cookie)
{
	struct vio_virtq_split *s = &vq->l.split;
	struct vio_virtq_drv_state *st;
	uint16_t head;
	uint64_t gpa;

	/* Chains out of line, so the one-descriptor path, the common case, stays short. */
	if (__builtin_expect(nout + nin != 1, 0))
		return add_chain_split(vq, mem, iov, nout, nin, cookie);
	if (!vq->num_free)
		return -ENOSPC;
	if (vio_mem_host_to_gpa_inl(mem, iov->iov_base, iov->iov_len, &gpa))
		return -EFAULT;
	head = s->free_head;
	st = &vq->drv[head];
	desc_store_split(&s->desc[head], gpa, (uint32_t)iov->iov_len,
			 nout ? 0 : VIRTQ_DESC_F_WRITE, 0);
	/* IN_ORDER: free descriptors are the ring-order run after the in-flight ones. */
	s->free_head = vq->in_order ? (uint16_t)((head + 1) & (vq->size - 1)) : st->next;
	vq->num_free--;
	st->cookie = cookie;
	st->ndesc = 1;
	VQ_STORE(&s->avail->ring[s->avail_idx_shadow & (vq->size - 1)], head);
	s->avail_idx_shadow++;
	return 0;
}

void vio_virtq_publish_split(struct vio_virtq *vq)
{
	struct vio_virtq_split *s = &vq->l.split;

	/*
	 * Barrier A (release): descriptors and ring entries are visible before
	 * the new available index. Pairs with the acquire load of avail->idx in
	 * vio_virtq_pop_burst_split / has_avail.
	 */
	VQ_STORE_REL(&s->avail->idx, s->avail_idx_shadow);
}

bool vio_virtq_kick_prepare_split(struct vio_virtq *vq)
{
	struct vio_virtq_split *s = &vq->l.split;
	uint16_t old = s->kicked_avail, new = s->avail_idx_shadow;

	/* Nothing added since the last decision (publish alone does not count as one). */
	if (old == new)
		return false;
	s->kicked_avail = new;
	vio_virtq_publish_split(vq);
	/*
	 * Barrier C (full): the new index is visible before we read avail_event
	 * / flags. Pairs with the fence in vio_virtq_device_enable_notify_split.
	 */
	VQ_FULL_FENCE();
	if (vq->event_idx)
		return vring_need_event(VQ_LOAD(avail_event_split(vq)), new, old);
	return !(VQ_LOAD(&s->used->flags) & VIRTQ_USED_F_NO_NOTIFY);
}

/* Give the descriptors of the buffer at head back. */
static inline void free_chain_split(struct vio_virtq *vq, uint16_t head)
{
	struct vio_virtq_drv_state *st = &vq->drv[head];
	uint16_t last = head;

	vq->num_free += st->ndesc;
	st->cookie = NULL;
	/* IN_ORDER: free descriptors are the ring-order run after the in-flight ones. */
	if (vq->in_order)
		return;
	for (uint16_t k = 1; k < st->ndesc; k++)
		last = vq->drv[last].next;
	vq->drv[last].next = vq->l.split.free_head;
	vq->l.split.free_head = head;
}

/*
 * IN_ORDER: the used entry at last_used_idx names the last buffer of a batch
 * that starts at the oldest buffer in flight. Count the batch, checking it
 * fits in what the device published. 0 if the entry is bogus.
 */
static uint16_t in_order_batch_len_split(const struct vio_virtq *vq, uint16_t oldest, uint16_t id,
					 uint16_t pending)
{
	uint16_t mask = vq->size - 1, h = oldest;

	for (uint16_t b = 1; b <= pending; b++) {
		if (!vq->drv[h].cookie || vq->drv[h].ndesc == 0)
			return 0;
		if (h == id)
			return b;
		h = (h + vq->drv[h].ndesc) & mask;
	}
	return 0;
}

/* The device returned something not in flight: fault the queue (a call kept off the fast path). */
static __attribute__((noinline)) int bad_used_split(struct vio_virtq *vq, unsigned got)
{
	vio_virtq_set_fault(vq, VIO_VQ_BAD_USED);
	return got ? (int)got : -EIO;
}

/* IN_ORDER reaping: one used entry may stand for a batch of buffers (2.7.9). */
static __attribute__((noinline)) int get_used_in_order_split(struct vio_virtq *vq, void **cookies,
							     uint32_t *lens, unsigned n,
							     uint16_t used_idx)
{
	struct vio_virtq_split *s = &vq->l.split;
	uint16_t mask = vq->size - 1;
	unsigned got = 0;

	while (got < n && s->last_used_idx != used_idx) {
		const struct virtq_used_elem *e = &s->used->ring[s->last_used_idx & mask];
		/* In flight descriptors are the run that ends just before free_head. */
		uint16_t head = (uint16_t)(s->free_head - (vq->size - vq->num_free)) & mask;
		uint32_t len;

		if (s->batch_left == 0) {
			uint32_t id = VQ_LOAD(&e->id);

			if (id >= vq->size)
				return bad_used_split(vq, got);
			s->batch_left = in_order_batch_len_split(vq, head, (uint16_t)id,
								 used_idx - s->last_used_idx);
			if (s->batch_left == 0)
				return bad_used_split(vq, got);
			s->batch_len = VQ_LOAD(&e->len);
		}
		len = --s->batch_left ? 0 : s->batch_len;
		cookies[got] = vq->drv[head].cookie;
		lens[got] = len;
		free_chain_split(vq, head);
		s->last_used_idx++;
		got++;
	}
	return (int)got;
}

int vio_virtq_get_used_burst_split(struct vio_virtq *vq, void **cookies, uint32_t *lens,
				   unsigned n)
{
	struct vio_virtq_split *s = &vq->l.split;
	uint16_t used_idx = s->used_idx_seen, last = s->last_used_idx;
	unsigned got;

	/* As in pop: read used->idx, the device's hot line, only when what we saw is not enough. */
	if ((uint16_t)(used_idx - last) < n) {
		/*
		 * Barrier B (acquire): the used entries written before this
		 * index are visible to the loads below (and to those of later
		 * calls up to it). Pairs with the release store of used->idx in
		 * vio_virtq_push_burst_split.
		 */
		used_idx = VQ_LOAD_ACQ(&s->used->idx);
		if ((uint16_t)(used_idx - last) > vq->size)
			return bad_used_split(vq, 0);
		s->used_idx_seen = used_idx;
	}
	if (vq->in_order)
		return get_used_in_order_split(vq, cookies, lens, n, used_idx);
	for (got = 0; got < n && last != used_idx; got++, last++) {
		const struct virtq_used_elem *e = &s->used->ring[last & (vq->size - 1)];
		uint32_t id = VQ_LOAD(&e->id);
		struct vio_virtq_drv_state *st;

		if (id >= vq->size || !(st = &vq->drv[id])->cookie) {
			s->last_used_idx = last;
			return bad_used_split(vq, got);
		}
		lens[got] = VQ_LOAD(&e->len);
		cookies[got] = st->cookie;
		if (st->ndesc == 1) {
			/* One descriptor back on the free list. */
			vq->num_free++;
			st->cookie = NULL;
			st->next = s->free_head;
			s->free_head = (uint16_t)id;
		} else {
			free_chain_split(vq, (uint16_t)id);
		}
	}
	s->last_used_idx = last;
	return (int)got;
}

void vio_virtq_driver_disable_cb_split(struct vio_virtq *vq)
{
	struct vio_virtq_split *s = &vq->l.split;

	if (vq->event_idx) {
		/* An index the device has already passed: no interrupt for 65535 buffers. */
		VQ_STORE(used_event_split(vq), (uint16_t)(s->last_used_idx - 1));
		return;
	}
	if (!(s->avail_flags_shadow & VIRTQ_AVAIL_F_NO_INTERRUPT)) {
		s->avail_flags_shadow |= VIRTQ_AVAIL_F_NO_INTERRUPT;
		VQ_STORE(&s->avail->flags, s->avail_flags_shadow);
	}
}

/* Arm an interrupt for when the used index passes event; false if buffers are pending. */
static bool arm_cb_split(struct vio_virtq *vq, uint16_t event, uint16_t want)
{
	struct vio_virtq_split *s = &vq->l.split;

	if (vq->event_idx) {
		VQ_STORE(used_event_split(vq), event);
	} else if (s->avail_flags_shadow & VIRTQ_AVAIL_F_NO_INTERRUPT) {
		s->avail_flags_shadow &= (uint16_t)~VIRTQ_AVAIL_F_NO_INTERRUPT;
		VQ_STORE(&s->avail->flags, s->avail_flags_shadow);
	}
	/*
	 * Barrier D (full): used_event / flags are visible before we read
	 * used->idx. Pairs with the fence in vio_virtq_device_should_notify_split.
	 */
	VQ_FULL_FENCE();
	/* Safe to sleep only if the device has not already passed the index we armed. */
	return (uint16_t)(VQ_LOAD(&s->used->idx) - s->last_used_idx) < want;
}

bool vio_virtq_driver_enable_cb_split(struct vio_virtq *vq)
{
	return arm_cb_split(vq, vq->l.split.last_used_idx, 1);
}

bool vio_virtq_driver_enable_cb_after_split(struct vio_virtq *vq, uint16_t after)
{
	if (!vq->event_idx || after <= 1)
		return vio_virtq_driver_enable_cb_split(vq);
	return arm_cb_split(vq, (uint16_t)(vq->l.split.last_used_idx + after - 1), after);
}
