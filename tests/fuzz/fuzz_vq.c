/* SPDX-License-Identifier: MIT */
/*
 * The device-side queue harness of the walker targets (see fuzz_vq.h): the
 * blocks of guest memory and their map, the driver's side by hand, the
 * address encoding, and pop / push / notify / remap / set_pos with their
 * invariants. Knows the layouts only as far as where the device may write.
 */
#include <errno.h>

#include "fuzz_vq.h"

#define FZQ_RING_GPA 0x200000000ull
#define FZQ_TABLE_GPA 0x300000000ull
#define FZQ_SPACING 0x100000ull /* guest space between ring parts and between tables */

/* ---- blocks and the map ---- */

static void block_free(struct fzq_block *b)
{
	free(b->p);
	free(b->snap);
	memset(b, 0, sizeof(*b));
}

/* A zeroed block of exactly len bytes, so ASan flags a read one past it. */
static void *block_new(struct fzq_block *b, size_t len, size_t align, uint64_t gpa, bool ring)
{
	void *p;

	block_free(b);
	/* (posix_memalign wants at least pointer alignment; the length stays exact.) */
	if (posix_memalign(&p, align < 16 ? 16 : align, len) || !(b->snap = malloc(len)))
		abort();
	memset(p, 0, len);
	b->p = p;
	b->len = len;
	b->gpa = gpa;
	b->ring = ring;
	return p;
}

static void map_rebuild(struct fzq *z)
{
	vio_mem_init(&z->map);
	for (unsigned i = 0; i < FZQ_NBLOCKS; i++) {
		const struct fzq_block *b = &z->blk[i];
		struct vio_mem_region r = { .gpa = b->gpa, .size = b->len, .host = b->p };

		if (!b->p || z->map_mode == 3 || (z->map_mode == 1 && i == FZQ_BLK_B) ||
		    (z->map_mode == 2 && b->ring))
			continue;
		if (vio_mem_add(&z->map, &r))
			abort();
	}
}

static void on_fault(void *opaque, unsigned index, enum vio_virtq_fault why)
{
	struct fzq *z = opaque;

	z->nfaults++;
	z->fault_index = index;
}

void fzq_init(struct fzq *z, struct fz *in, bool packed)
{
	uint8_t fb = fz_u8(in), sb = fz_u8(in), cb = fz_u8(in);
	uint64_t f = VIO_BIT(VIRTIO_F_VERSION_1);
	struct vio_virtq_addrs a;
	struct fzq_block *r = &z->blk[FZQ_BLK_R0];
	int rc;

	memset(z, 0, sizeof(*z));
	z->packed = packed;
	if (packed)
		f |= VIO_BIT(VIRTIO_F_RING_PACKED);
	if (fb & 1)
		f |= VIO_BIT(VIRTIO_F_INDIRECT_DESC);
	if (fb & 2)
		f |= VIO_BIT(VIRTIO_F_EVENT_IDX);
	if (fb & 4)
		f |= VIO_BIT(VIRTIO_F_IN_ORDER);
	/* Split sizes are powers of two; packed may be anything. 256 at most keeps inputs cheap. */
	z->size = packed ? (uint16_t)(1 + sb) : (uint16_t)(1u << (sb % 9));
	/* Mostly small (chains cut short), now and then enough for a full indirect table. */
	z->iov_cap = cb < 192 ? 1 + cb % 64 : 256 + (cb - 192) * 2;
	block_new(&z->blk[FZQ_BLK_A], FZQ_A_LEN, 4096, FZQ_A_GPA, false);
	/* B directly after A in guest-physical space: only the host addresses tell them apart. */
	block_new(&z->blk[FZQ_BLK_B], FZQ_B_LEN, 4096, FZQ_A_GPA + FZQ_A_LEN, false);
	if (packed) {
		z->pdesc = block_new(&r[0], 16u * z->size, 16, FZQ_RING_GPA, true);
		z->drv_event = block_new(&r[1], 4, 4, FZQ_RING_GPA + FZQ_SPACING, true);
		z->dev_event = block_new(&r[2], 4, 4, FZQ_RING_GPA + 2 * FZQ_SPACING, true);
		z->hand_wrap = true;
	} else {
		z->sdesc = block_new(&r[0], 16u * z->size, 16, FZQ_RING_GPA, true);
		z->avail = block_new(&r[1], virtq_avail_bytes(z->size), 2,
				     FZQ_RING_GPA + FZQ_SPACING, true);
		z->used = block_new(&r[2], virtq_used_bytes(z->size), 4,
				    FZQ_RING_GPA + 2 * FZQ_SPACING, true);
	}
	a = (struct vio_virtq_addrs){ r[0].gpa, r[1].gpa, r[2].gpa };
	map_rebuild(z);
	rc = vio_virtq_device_init(&z->dev, f, z->size, &a, &z->map);
	FZ_CHECK(rc == 0, "device_init: %d", rc);
	vio_virtq_set_owner(&z->dev, "fuzz q3", 3, on_fault, z);
}

void fzq_fini(struct fzq *z)
{
	vio_virtq_fini(&z->dev);
	for (unsigned i = 0; i < FZQ_NBLOCKS; i++)
		block_free(&z->blk[i]);
}

void *fzq_table(struct fzq *z, unsigned n, uint64_t *gpa)
{
	unsigned t = z->next_table++ % FZQ_TABLES;
	void *p = block_new(&z->blk[FZQ_BLK_T0 + t], 16u * n, 16,
			    FZQ_TABLE_GPA + t * FZQ_SPACING, false);

	map_rebuild(z);
	*gpa = z->blk[FZQ_BLK_T0 + t].gpa;
	return p;
}

void *fzq_scratch(struct fzq *z, uint16_t v)
{
	return z->blk[FZQ_BLK_A].p + 16u * (v % (FZQ_SCRATCH_LEN / 16));
}

uint64_t fzq_addr(struct fzq *z, struct fz *in, uint32_t *len)
{
	uint8_t mode = fz_u8(in);
	uint64_t v = (mode & 7) == 3 ? fz_u64(in) : fz_u16(in);
	uint64_t a = FZQ_A_GPA, b = FZQ_A_GPA + FZQ_A_LEN;
	const struct fzq_block *t = &z->blk[FZQ_BLK_T0 + v % FZQ_TABLES];
	uint64_t addr;

	switch (mode & 7) {
	case 0: addr = a + v % (FZQ_A_LEN + 64); break;           /* anywhere in A, or just past */
	case 1: addr = b + v % (FZQ_B_LEN + 64); break;           /* anywhere in B, or just past */
	case 2: addr = b - 1 - v % 64; break;                     /* straddling A's end into B */
	case 3: addr = v; break;                                  /* anything at all */
	case 4: addr = a + (v % FZQ_SCRATCH_LEN & ~15ull); break; /* a scratch table slot */
	case 5: addr = t->gpa + (v >> 8) % 64; break;             /* a table (or where one was) */
	case 6: addr = a + FZQ_SCRATCH_LEN + (v % (FZQ_A_LEN - FZQ_SCRATCH_LEN) & ~15ull); break;
	default: addr = b + FZQ_B_LEN - v % 64; break;            /* B's end, past the map */
	}
	if (mode & 0x80)
		*len = fz_u32(in);                         /* anything, overflow included */
	else if (mode & 0x40)
		*len = (uint32_t)(fz_u16(in) % 300) * 16;  /* table-shaped */
	else
		*len = fz_u16(in);
	return addr;
}

/* ---- the driver's side ---- */

void fzq_split_set_avail_idx(struct fzq *z, uint16_t idx)
{
	z->hand_avail = idx;
	atomic_store_explicit((_Atomic uint16_t *)&z->avail->idx, idx, memory_order_release);
}

void fzq_split_publish(struct fzq *z, uint16_t head)
{
	z->avail->ring[z->hand_avail % z->size] = head;
	fzq_split_set_avail_idx(z, (uint16_t)(z->hand_avail + 1));
}

void fzq_packed_publish(struct fzq *z, const struct pvirtq_desc *d, unsigned n)
{
	uint16_t head = z->hand_next, head_flags = 0;

	for (unsigned i = 0; i < n; i++) {
		uint16_t slot = z->hand_next;
		uint16_t f = d[i].flags & ~(VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED);

		f |= z->hand_wrap ? VIRTQ_DESC_F_AVAIL : VIRTQ_DESC_F_USED;
		z->pdesc[slot].addr = d[i].addr;
		z->pdesc[slot].len = d[i].len;
		z->pdesc[slot].id = d[i].id;
		if (i == 0)
			head_flags = f;
		else
			z->pdesc[slot].flags = f;
		if (++z->hand_next == z->size) {
			z->hand_next = 0;
			z->hand_wrap = !z->hand_wrap;
		}
	}
	/* The head last, with release: the device sees the chain whole or not at all. */
	atomic_store_explicit((_Atomic uint16_t *)&z->pdesc[head].flags, head_flags,
			      memory_order_release);
}

/* ---- guest memory snapshots ---- */

static void snap_take(struct fzq *z)
{
	for (unsigned i = 0; i < FZQ_NBLOCKS; i++)
		if (z->blk[i].p)
			memcpy(z->blk[i].snap, z->blk[i].p, z->blk[i].len);
}

/* The device may have written [p, p + len): accept it into the snapshot. */
static void snap_allow(struct fzq *z, const void *p, size_t len)
{
	for (unsigned i = 0; i < FZQ_NBLOCKS; i++) {
		struct fzq_block *b = &z->blk[i];
		size_t off = (size_t)((const uint8_t *)p - b->p);

		if (b->p && (const uint8_t *)p >= b->p && off < b->len && len <= b->len - off) {
			memcpy(b->snap + off, p, len);
			return;
		}
	}
	FZ_CHECK(0, "the words the device may write are not in one block");
}

static void snap_check(struct fzq *z, const char *what)
{
	for (unsigned i = 0; i < FZQ_NBLOCKS; i++)
		FZ_CHECK(!z->blk[i].p || !memcmp(z->blk[i].snap, z->blk[i].p, z->blk[i].len),
			 "%s wrote guest memory it does not own (block %u)", what, i);
}

static bool broken(struct fzq *z)
{
	return vio_virtq_is_broken(&z->dev);
}

/* The fault handler ran exactly once if and only if the queue is broken. */
static void check_fault_count(struct fzq *z)
{
	bool b = broken(z);

	FZ_CHECK(z->nfaults == (b ? 1u : 0u), "%u fault callbacks, broken %d", z->nfaults, b);
	FZ_CHECK(b == (vio_virtq_fault_reason(&z->dev) != VIO_VQ_OK), "reason vs broken");
	if (b)
		FZ_CHECK(z->fault_index == 3, "fault reported for queue %u", z->fault_index);
}

/* ---- positions ---- */

static void advance(uint16_t *idx, bool *wrap, unsigned n, uint16_t size)
{
	unsigned s = *idx + n;

	if (s >= size) {
		s -= size;
		*wrap = !*wrap;
	}
	*idx = (uint16_t)s;
}

static struct vio_virtq_pos get_pos(struct fzq *z)
{
	struct vio_virtq_pos p;

	FZ_CHECK(vio_virtq_get_pos(&z->dev, &p) == 0, "get_pos on a device queue");
	return p;
}

/* ---- pop and push ---- */

static bool in_block(const struct fzq *z, const void *p, size_t len)
{
	for (unsigned i = 0; i < FZQ_NBLOCKS; i++) {
		uintptr_t a = (uintptr_t)p, b = (uintptr_t)z->blk[i].p;

		size_t size = z->blk[i].len;

		if (z->blk[i].p && a >= b && a - b < size && len <= size - (a - b))
			return true;
	}
	return false;
}

static void check_chain(struct fzq *z, const struct vio_chain *c, unsigned i)
{
	uint64_t out = 0, in = 0;
	unsigned n = c->nout + c->nin;

	FZ_CHECK(n <= c->iov_cap, "chain %u: %u iovecs, room for %u", i, n, c->iov_cap);
	FZ_CHECK(c->status == 0 || (c->status == -ENOBUFS && n == c->iov_cap),
		 "chain %u: status %d with %u of %u iovecs", i, c->status, n, c->iov_cap);
	FZ_CHECK(c->id < z->size, "chain %u: id %u, size %u", i, c->id, z->size);
	FZ_CHECK(c->ndesc >= 1 && c->ndesc <= z->size, "chain %u: ndesc %u", i, c->ndesc);
	for (unsigned k = 0; k < n; k++) {
		const struct iovec *v = &c->iov[k];

		FZ_CHECK(v->iov_len > 0, "chain %u iov %u empty", i, k);
		FZ_CHECK(in_block(z, v->iov_base, v->iov_len),
			 "chain %u iov %u (%p, %zu) not inside one region", i, k, v->iov_base,
			 v->iov_len);
		if (k < c->nout)
			out += v->iov_len;
		else
			in += v->iov_len;
	}
	FZ_CHECK(out == c->out_bytes && in == c->in_bytes,
		 "chain %u: iovecs add up to %llu/%llu, reported %u/%u", i,
		 (unsigned long long)out, (unsigned long long)in, c->out_bytes, c->in_bytes);
}

static void push(struct fzq *z, const struct vio_used_elem *e, unsigned n)
{
	bool was = broken(z);
	struct vio_virtq_pos before = get_pos(z), after;
	int rc;

	snap_take(z);
	rc = vio_virtq_push_burst(&z->dev, e, n);
	if (was) {
		FZ_CHECK(rc == -EIO, "push on a broken queue returned %d", rc);
		snap_check(z, "push on a broken queue");
		return;
	}
	FZ_CHECK(rc == (int)n, "push of %u returned %d", n, rc);
	/* Where a push may write: the used ring (split) or the descriptor ring (packed). */
	if (n && z->packed)
		snap_allow(z, z->pdesc, 16u * z->size);
	else if (n)
		snap_allow(z, z->used, 4u + 8u * z->size);
	snap_check(z, "push");
	after = get_pos(z);
	if (!z->packed) {
		FZ_CHECK(after.used_idx == (uint16_t)(before.used_idx + n),
			 "split used idx moved by %u, pushed %u",
			 (uint16_t)(after.used_idx - before.used_idx), n);
		/* (The driver may scribble on used->idx; a push of nothing writes nothing.) */
		FZ_CHECK(!n || z->used->idx == after.used_idx, "used->idx not published");
	} else {
		for (unsigned i = 0; i < n; i++)
			advance(&before.used_idx, &before.used_wrap,
				e[i].ndesc && e[i].ndesc <= z->size ? e[i].ndesc : 1, z->size);
		FZ_CHECK(after.used_idx == before.used_idx && after.used_wrap == before.used_wrap,
			 "packed used position %u/%d, expected %u/%d", after.used_idx,
			 after.used_wrap, before.used_idx, before.used_wrap);
	}
	FZ_CHECK(after.avail_idx == before.avail_idx && after.avail_wrap == before.avail_wrap,
		 "push moved the avail position");
}

static uint32_t used_len(struct fz *in, uint8_t policy, const struct vio_chain *c)
{
	switch (policy & 3) {
	case 0: return c->in_bytes;
	case 1: return 0;
	case 2: return fz_u32(in);
	default: return c->in_bytes / 2;
	}
}

void fzq_pop(struct fzq *z, struct fz *in)
{
	unsigned n = 1 + fz_u8(in) % FZQ_BURST_MAX;
	uint8_t policy = fz_u8(in);
	struct vio_chain chains[FZQ_BURST_MAX];
	struct vio_used_elem elems[FZQ_BURST_MAX];
	struct iovec *iov = malloc(sizeof(*iov) * n * z->iov_cap);
	bool was = broken(z);
	struct vio_virtq_pos before = get_pos(z), after;
	unsigned k = 0;
	int rc;

	if (!iov)
		abort();
	for (unsigned i = 0; i < n; i++) {
		chains[i].iov = iov + (size_t)i * z->iov_cap;
		chains[i].iov_cap = z->iov_cap;
	}
	snap_take(z);
	rc = vio_virtq_pop_burst(&z->dev, &z->map, chains, n);
	check_fault_count(z);
	if (was) {
		FZ_CHECK(rc == -EIO, "pop on a broken queue returned %d", rc);
		snap_check(z, "pop on a broken queue");
		free(iov);
		return;
	}
	FZ_CHECK(rc == -EIO || (rc >= 0 && rc <= (int)n), "pop of %u returned %d", n, rc);
	FZ_CHECK(rc != -EIO || broken(z), "pop returned -EIO on a healthy queue");
	if (z->packed)
		snap_allow(z, z->dev_event, 4);
	snap_check(z, "pop");
	after = get_pos(z);
	for (int i = 0; i < rc; i++) {
		check_chain(z, &chains[i], (unsigned)i);
		if (z->packed)
			advance(&before.avail_idx, &before.avail_wrap, chains[i].ndesc, z->size);
	}
	if (!z->packed)
		before.avail_idx += (uint16_t)(rc > 0 ? rc : 0);
	FZ_CHECK(after.avail_idx == before.avail_idx && after.avail_wrap == before.avail_wrap,
		 "avail position %u/%d after popping %d, expected %u/%d", after.avail_idx,
		 after.avail_wrap, rc, before.avail_idx, before.avail_wrap);
	FZ_CHECK(after.used_idx == before.used_idx && after.used_wrap == before.used_wrap,
		 "pop moved the used position");

	/* Give back what was popped: now (in order or reversed), later, or never. */
	for (int i = 0; i < rc; i++) {
		struct vio_used_elem e = { chains[i].id, chains[i].ndesc,
					   used_len(in, policy >> 3, &chains[i]) };

		if ((policy & 3) == 2 && z->nheld < FZQ_HELD_MAX)
			z->held[z->nheld++] = e;
		else if ((policy & 3) != 3)
			elems[k++] = e;
	}
	free(iov);
	if ((policy & 3) == 1) {
		for (unsigned i = 0; i < k / 2; i++) {
			struct vio_used_elem t = elems[i];

			elems[i] = elems[k - 1 - i];
			elems[k - 1 - i] = t;
		}
	}
	push(z, elems, k);
	if (policy & 4) {
		push(z, z->held, z->nheld);
		z->nheld = 0;
	}
	check_fault_count(z);
}

/* ---- notifications ---- */

void fzq_notify(struct fzq *z, struct fz *in)
{
	uint8_t op = fz_u8(in) % 5;
	bool was = broken(z), r;

	if (op == 4) {
		/* The driver's side: what it asks of the device. */
		uint16_t a = fz_u16(in), b = fz_u16(in);

		if (z->packed) {
			z->drv_event->desc = a;
			z->drv_event->flags = b;
		} else {
			z->avail->flags = a;
			z->avail->ring[z->size] = b; /* used_event */
		}
		return;
	}
	snap_take(z);
	switch (op) {
	case 0:
		r = vio_virtq_device_should_notify(&z->dev);
		FZ_CHECK(!was || !r, "should_notify true on a broken queue");
		break;
	case 1:
		FZ_CHECK(vio_virtq_device_disable_notify(&z->dev) == (was ? -EIO : 0),
			 "disable_notify");
		break;
	case 2:
		r = vio_virtq_device_enable_notify(&z->dev);
		FZ_CHECK(!was || !r, "enable_notify true on a broken queue");
		break;
	default:
		r = vio_virtq_device_has_avail(&z->dev);
		FZ_CHECK(!was || !r, "has_avail true on a broken queue");
		break;
	}
	/* What the device owns: used flags, avail event (split); its event structure (packed). */
	if (!was && (op == 1 || op == 2)) {
		if (z->packed) {
			snap_allow(z, z->dev_event, 4);
		} else {
			snap_allow(z, &z->used->flags, 2);
			snap_allow(z, &z->used->ring[z->size], 2); /* avail_event */
		}
	}
	snap_check(z, was ? "a notification call on a broken queue" : "a notification call");
	check_fault_count(z);
}

/* ---- set-up calls ---- */

void fzq_remap(struct fzq *z, struct fz *in)
{
	bool was = broken(z);
	int rc;

	z->map_mode = fz_u8(in) % 4;
	map_rebuild(z);
	snap_take(z);
	rc = vio_virtq_remap(&z->dev, &z->map);
	snap_check(z, "remap");
	if (was)
		FZ_CHECK(rc == -EIO, "remap of a broken queue returned %d", rc);
	else if (z->map_mode < 2)
		FZ_CHECK(rc == 0, "remap onto a map holding the rings returned %d", rc);
	else
		FZ_CHECK(rc == -EFAULT && vio_virtq_fault_reason(&z->dev) == VIO_VQ_RINGS_GONE,
			 "remap without the rings: %d", rc);
	check_fault_count(z);
}

void fzq_set_pos(struct fzq *z, struct fz *in)
{
	struct vio_virtq_pos pos, got;
	uint8_t f = fz_u8(in);
	bool was = broken(z);
	int rc;

	pos.avail_idx = fz_u16(in);
	pos.used_idx = fz_u16(in);
	pos.avail_wrap = f & 1;
	pos.used_wrap = f & 2;
	if (f & 4) {
		/* Mostly inside the ring, so the run goes on from there. */
		pos.avail_idx %= z->size;
		pos.used_idx %= z->size;
	}
	snap_take(z);
	rc = vio_virtq_set_pos(&z->dev, &pos);
	snap_check(z, "set_pos");
	if (was) {
		FZ_CHECK(rc == -EIO, "set_pos on a broken queue returned %d", rc);
		return;
	}
	if (z->packed && (pos.avail_idx >= z->size || pos.used_idx >= z->size)) {
		FZ_CHECK(rc == -EINVAL, "set_pos beyond the ring returned %d", rc);
		return;
	}
	FZ_CHECK(rc == 0, "set_pos returned %d", rc);
	got = get_pos(z);
	FZ_CHECK(got.avail_idx == pos.avail_idx, "set_pos avail %u, get_pos %u", pos.avail_idx,
		 got.avail_idx);
	if (z->packed)
		FZ_CHECK(got.used_idx == pos.used_idx && got.avail_wrap == pos.avail_wrap &&
			 got.used_wrap == pos.used_wrap, "packed set_pos not kept");
	else
		FZ_CHECK(got.used_idx == z->used->idx,
			 "split set_pos must take the used index from the ring");
	/* Chains held from before the move belong to a ring position that is gone. */
	z->nheld = 0;
}

void fzq_raw(struct fzq *z, struct fz *in)
{
	struct fzq_block *b = &z->blk[fz_u8(in) % FZQ_NBLOCKS];
	size_t off, len = fz_u8(in);

	if (!b->p)
		b = &z->blk[FZQ_BLK_A];
	off = fz_u16(in) % b->len;
	if (len > b->len - off)
		len = b->len - off;
	fz_bytes(in, b->p + off, len);
}
