/* SPDX-License-Identifier: MIT */
/*
 * The device side of the split virtqueue (virtio 1.2, 2.7): resolving the
 * rings, the chain walker, the used ring and the notification decisions.
 * The walker is the only code that follows `next` or opens an indirect
 * table. Nothing here trusts a value read from the rings, allocates,
 * blocks, or divides on the data path.
 */
#include <string.h>

#include "mem_internal.h"
#include "split_internal.h"

size_t vio_virtq_area_size_split(uint16_t size)
{
	/* Rounded to 16 so indirect tables placed after the rings stay aligned. */
	return align_up_split(used_off_split(size) + virtq_used_bytes(size), 16);
}

int vio_virtq_resolve_split(struct vio_virtq *vq, const struct vio_mem *mem)
{
	struct vio_virtq_split *s = &vq->l.split;
	void *desc, *avail, *used;

	/* The device reads the table and the available ring, and writes (and reads) the used ring. */
	desc = vio_mem_translate_inl(mem, vq->addrs.desc, 16ull * vq->size, VIO_MEM_READ);
	avail = vio_mem_translate_inl(mem, vq->addrs.driver, virtq_avail_bytes(vq->size),
				      VIO_MEM_READ);
	used = vio_mem_translate_inl(mem, vq->addrs.device, virtq_used_bytes(vq->size), VIO_MEM_RW);
	/* Atomic ring accesses need naturally aligned host addresses too. */
	if (!desc || !avail || !used || ((uintptr_t)desc & 7) || ((uintptr_t)avail & 1) ||
	    ((uintptr_t)used & 3)) {
		/* Never keep pointers into a map that no longer holds the rings. */
		s->desc = NULL;
		s->avail = NULL;
		s->used = NULL;
		return desc && avail && used ? -EINVAL : -EFAULT;
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

void vio_virtq_get_pos_split(const struct vio_virtq *vq, struct vio_virtq_pos *pos)
{
	*pos = (struct vio_virtq_pos){
		.avail_idx = vq->l.split.last_avail_idx,
		.used_idx = vq->l.split.used_idx_shadow,
	};
}

int vio_virtq_set_pos_split(struct vio_virtq *vq, const struct vio_virtq_pos *pos)
{
	struct vio_virtq_split *s = &vq->l.split;

	s->last_avail_idx = pos->avail_idx;
	s->avail_idx_seen = pos->avail_idx; /* nothing known: the next pop reads avail->idx */
	/* The used index is ours to write but the ring keeps it: what a predecessor published. */
	s->used_idx_shadow = VQ_LOAD(&s->used->idx);
	s->signalled_used = s->used_idx_shadow;
	return 0;
}

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
 * THE chain walker. Turns the chain at head into c's iovecs (readable part,
 * then writable part) through vio_chain_append. Returns VIO_VQ_OK, or why
 * the chain is malformed: then nothing was consumed and the caller raises
 * the fault. Once c's iovecs are full (c->status -ENOBUFS) it stops
 * translating and stops inside an indirect table, but still follows the
 * ring's own links, so the chain is consumed whole and its ndesc is right.
 * Its cost is bounded by the queue size plus one table of at most
 * vio_virtq_indirect_max entries.
 */
static enum vio_virtq_fault walk_chain_split(const struct vio_virtq *vq, const struct vio_mem *mem,
					     uint16_t head, struct vio_chain *c)
{
	const struct virtq_desc *tbl = vq->l.split.desc;
	uint32_t limit = vq->size;  /* entries in the table being walked */
	uint32_t budget = vq->size; /* descriptors we may still visit in it: loops end */
	uint32_t i = head;
	bool aligned = true, in_indirect = false, writing = false, full = false;
	uint64_t total = 0;
	uint16_t ndesc = 0;
	struct virtq_desc d;

	if (head >= vq->size)
		return VIO_VQ_BAD_HEAD;
	vio_chain_reset(c);
	for (;;) {
		if (budget-- == 0)
			return VIO_VQ_CHAIN_TOO_LONG;
		desc_load_split(&tbl[i], aligned, &d);
		if (!in_indirect)
			ndesc++;

		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			if (in_indirect)
				return VIO_VQ_NESTED_INDIRECT;
			if (!vq->indirect || d.len == 0 || d.len % 16 ||
			    d.len / 16 > vio_virtq_indirect_max(vq))
				return VIO_VQ_BAD_INDIRECT;
			if (d.flags & VIRTQ_DESC_F_NEXT)
				return VIO_VQ_INDIRECT_NEXT;
			if (full)
				break; /* the table is the chain's last descriptor: consumed */
			tbl = vio_mem_translate_inl(mem, d.addr, d.len, VIO_MEM_READ);
			if (!tbl)
				return vio_mem_why(mem, d.addr, d.len, VIO_MEM_READ, true) == -EAGAIN
					       ? VIO_VQ_IOTLB_WAIT
					       : VIO_VQ_BAD_ADDR;
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
		if (d.len && !full) {
			enum vio_virtq_fault f = vio_chain_add_buf(c, mem, d.addr, d.len, writing, &full);

			if (f != VIO_VQ_OK)
				return f;
		}

		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			break;
		if (d.next >= limit)
			return VIO_VQ_BAD_NEXT;
		if (full && in_indirect)
			break; /* the rest of the table costs work and changes nothing */
		i = d.next;
	}
	c->id = head;
	c->ndesc = ndesc;
	return VIO_VQ_OK;
}

/* A chain a previous device left in flight, by head index, through the same walker. */
enum vio_virtq_fault vio_virtq_repop_split(struct vio_virtq *vq, const struct vio_mem *mem,
					   unsigned i, struct vio_chain *c)
{
	return walk_chain_split(vq, mem, vq->redo.head[i], c);
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

		if (why == VIO_VQ_IOTLB_WAIT) {
			vq->iotlb_wait = true;
			return (int)k; /* nothing consumed: the chain is walked again later */
		}
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
	 * anything else (longer, indirect, empty, bad) goes, with the rest of
	 * the burst, to the walker, which checks it in full and faults the
	 * queue if it must.
	 */
	for (k = 0; k < n; k++) {
		struct vio_chain *c = &chains[k];
		uint16_t head = VQ_LOAD(&s->avail->ring[s->last_avail_idx & (vq->size - 1)]);
		const struct virtq_desc *p;
		struct virtq_desc d;
		void *host;

		if (head >= vq->size)
			break;
		p = &s->desc[head];
		/* One copy, each field read once (the table is aligned: resolve checked it). */
		d.flags = VQ_LOAD(&p->flags);
		if (d.flags & (VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_INDIRECT))
			break;
		d.addr = VQ_LOAD(&p->addr);
		d.len = VQ_LOAD(&p->len);
		host = vio_mem_translate_inl(mem, d.addr, d.len,
					     d.flags & VIRTQ_DESC_F_WRITE ? VIO_MEM_WRITE : VIO_MEM_READ);
		if (!host)
			break;
		vio_chain_reset(c);
		if (vio_chain_room(c))
			vio_chain_append(c, host, d.len, d.flags & VIRTQ_DESC_F_WRITE);
		c->id = head;
		c->ndesc = 1;
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
	struct virtq_used_elem *ring = s->used->ring;

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

	if (old == new)
		return false;
	s->signalled_used = new;
	/*
	 * Barrier D (full): our used->idx store is visible before we read the
	 * driver's used_event / flags. Pairs with the fence in
	 * vio_virtq_driver_enable_cb_split (used_event store, fence, used->idx load).
	 */
	VQ_FULL_FENCE();
	if (vq->event_idx)
		return vio_virtq_decided(vq, vring_need_event(VQ_LOAD(used_event_split(vq)), new, old));
	return vio_virtq_decided(vq, !(VQ_LOAD(&s->avail->flags) & VIRTQ_AVAIL_F_NO_INTERRUPT));
}

void vio_virtq_device_disable_notify_split(struct vio_virtq *vq)
{
	/* With EVENT_IDX a stale avail_event suppresses kicks by itself. */
	if (vq->event_idx)
		return;
	VQ_STORE(&vq->l.split.used->flags, (uint16_t)VIRTQ_USED_F_NO_NOTIFY);
}

bool vio_virtq_device_enable_notify_split(struct vio_virtq *vq)
{
	struct vio_virtq_split *s = &vq->l.split;

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

	if (s->avail_idx_seen != s->last_avail_idx)
		return true;
	/* Barrier A (acquire), as in pop: pairs with the release in publish. */
	return VQ_LOAD_ACQ(&s->avail->idx) != s->last_avail_idx;
}
