/* SPDX-License-Identifier: MIT */
/*
 * The device-side queue harness of the walker targets (see fuzz_vq.h): the
 * two regions, the address encoding, and pop / push / notify / remap /
 * set_pos with their invariants. Knows both layouts only as far as where
 * the device may write; the ring contents come from the targets.
 */
#include <errno.h>

#include "fuzz_vq.h"

bool fzq_init(struct fzq *z, struct fz *in, bool packed)
{
	uint8_t fb = fz_u8(in), sb = fz_u8(in), cb = fz_u8(in);
	uint64_t extra = 0;
	struct vio_mem_region r;
	uint16_t size;

	memset(z, 0, sizeof(*z));
	z->packed = packed;
	if (fb & 1)
		extra |= vqh_bit(VIRTIO_F_INDIRECT_DESC);
	if (fb & 2)
		extra |= vqh_bit(VIRTIO_F_EVENT_IDX);
	if (fb & 4)
		extra |= vqh_bit(VIRTIO_F_IN_ORDER);
	/* Split sizes are powers of two; packed may be anything. 256 at most keeps inputs cheap. */
	size = packed ? (uint16_t)(1 + sb) : (uint16_t)(1u << (sb % 9));
	/* Mostly small (chains cut short), now and then enough for a full indirect table. */
	z->iov_cap = cb < 192 ? 1 + cb % 64 : 256 + (cb - 192) * 2;
	if (vqh_mem_init(&z->m, FZQ_A_LEN))
		abort();
	if (vqh_q_init(&z->q, &z->m, vqh_features(packed ? &vqh_packed : &vqh_split, extra), size,
		       0))
		abort();
	z->tables = vqh_mem_alloc(&z->m, FZQ_TABLES_LEN, 16);
	z->data_len = FZQ_A_LEN - (size_t)(z->tables + FZQ_TABLES_LEN - z->m.host);
	z->data = vqh_mem_alloc(&z->m, z->data_len, 16);
	z->b = aligned_alloc(4096, FZQ_B_LEN);
	z->snap = malloc(FZQ_A_LEN + FZQ_B_LEN);
	if (!z->tables || !z->data || !z->b || !z->snap)
		abort();
	memset(z->b, 0, FZQ_B_LEN);
	/* B directly after A in guest-physical space: only the host addresses tell them apart. */
	z->b_gpa = z->m.gpa + z->m.len;
	r = (struct vio_mem_region){ .gpa = z->b_gpa, .size = FZQ_B_LEN, .host = z->b };
	if (vio_mem_add(&z->m.map, &r))
		abort();
	vio_mem_init(&z->map_a);
	vio_mem_init(&z->map_b);
	vio_mem_init(&z->map_none);
	if (vio_mem_add(&z->map_b, &r))
		abort();
	r = (struct vio_mem_region){ .gpa = z->m.gpa, .size = z->m.len, .host = z->m.host };
	if (vio_mem_add(&z->map_a, &r))
		abort();
	z->map = &z->m.map;
	return true;
}

void fzq_fini(struct fzq *z)
{
	vqh_q_fini(&z->q);
	vqh_mem_fini(&z->m);
	free(z->b);
	free(z->snap);
}

uint64_t fzq_addr(struct fzq *z, struct fz *in, uint32_t *len)
{
	uint8_t mode = fz_u8(in);
	uint64_t v = (mode & 7) == 3 ? fz_u64(in) : fz_u16(in);
	uint64_t a_end = z->m.gpa + z->m.len, b_end = z->b_gpa + FZQ_B_LEN;
	uint64_t tables = vqh_gpa(&z->m, z->tables), data = vqh_gpa(&z->m, z->data);
	uint64_t addr;

	switch (mode & 7) {
	case 0: addr = z->m.gpa + v % (z->m.len + 64); break;      /* anywhere in A, or just past */
	case 1: addr = z->b_gpa + v % (FZQ_B_LEN + 64); break;     /* anywhere in B, or just past */
	case 2: addr = a_end - 1 - v % 64; break;                  /* straddling A's end into B */
	case 3: addr = v; break;                                   /* anything at all */
	case 4: addr = tables + (v % FZQ_TABLES_LEN & ~15ull); break; /* a table slot */
	case 5: addr = tables + v % FZQ_TABLES_LEN; break;         /* maybe misaligned */
	case 6: addr = data + (v % z->data_len & ~15ull); break;   /* a data buffer */
	default: addr = b_end - v % 64; break;                     /* B's end, past the map */
	}
	if (mode & 0x80)
		*len = fz_u32(in);                         /* anything, overflow included */
	else if (mode & 0x40)
		*len = (uint32_t)(fz_u16(in) % 300) * 16;  /* table-shaped */
	else
		*len = fz_u16(in);
	return addr;
}

/* ---- guest memory snapshots ---- */

static void snap_take(struct fzq *z)
{
	memcpy(z->snap, z->m.host, FZQ_A_LEN);
	memcpy(z->snap + FZQ_A_LEN, z->b, FZQ_B_LEN);
}

/* The device may have written [p, p + len) of region A: accept it into the snapshot. */
static void snap_allow(struct fzq *z, const void *p, size_t len)
{
	size_t off = (size_t)((const uint8_t *)p - z->m.host);

	FZ_CHECK(off < FZQ_A_LEN && len <= FZQ_A_LEN - off, "ring outside region A");
	memcpy(z->snap + off, p, len);
}

static void snap_check(struct fzq *z, const char *what)
{
	FZ_CHECK(!memcmp(z->snap, z->m.host, FZQ_A_LEN) &&
		 !memcmp(z->snap + FZQ_A_LEN, z->b, FZQ_B_LEN),
		 "%s wrote guest memory it does not own", what);
}

static bool broken(struct fzq *z)
{
	return vio_virtq_is_broken(&z->q.dev);
}

/* The fault handler ran exactly once if and only if the queue is broken. */
static void check_fault_count(struct fzq *z)
{
	bool b = broken(z);

	FZ_CHECK(z->q.nfaults == (b ? 1u : 0u), "%u fault callbacks, broken %d", z->q.nfaults, b);
	FZ_CHECK(b == (vio_virtq_fault_reason(&z->q.dev) != VIO_VQ_OK), "reason vs broken");
	if (b)
		FZ_CHECK(z->q.fault_index == 7, "fault reported for queue %u", z->q.fault_index);
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

	FZ_CHECK(vio_virtq_get_pos(&z->q.dev, &p) == 0, "get_pos on a device queue");
	return p;
}

/* ---- pop and push ---- */

static bool inside(const void *p, size_t len, const void *base, size_t size)
{
	uintptr_t a = (uintptr_t)p, b = (uintptr_t)base;

	return a >= b && a - b < size && len <= size - (a - b);
}

static void check_chain(struct fzq *z, const struct vio_chain *c, unsigned i)
{
	uint64_t out = 0, in = 0;
	unsigned n = c->nout + c->nin;

	FZ_CHECK(n <= c->iov_cap, "chain %u: %u iovecs, room for %u", i, n, c->iov_cap);
	FZ_CHECK(c->status == 0 || (c->status == -ENOBUFS && n == c->iov_cap),
		 "chain %u: status %d with %u of %u iovecs", i, c->status, n, c->iov_cap);
	FZ_CHECK(c->id < z->q.size, "chain %u: id %u, size %u", i, c->id, z->q.size);
	FZ_CHECK(c->ndesc >= 1 && c->ndesc <= z->q.size, "chain %u: ndesc %u", i, c->ndesc);
	for (unsigned k = 0; k < n; k++) {
		const struct iovec *v = &c->iov[k];

		FZ_CHECK(v->iov_len > 0, "chain %u iov %u empty", i, k);
		FZ_CHECK(inside(v->iov_base, v->iov_len, z->m.host, FZQ_A_LEN) ||
			 inside(v->iov_base, v->iov_len, z->b, FZQ_B_LEN),
			 "chain %u iov %u (%p, %zu) outside both regions", i, k, v->iov_base,
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

/* Where a push may write: the used ring (split) or the descriptor ring (packed). */
static void allow_used_area(struct fzq *z)
{
	if (z->packed)
		snap_allow(z, z->q.drv.l.packed.desc, 16u * z->q.size);
	else
		snap_allow(z, z->q.drv.l.split.used, 4u + 8u * z->q.size);
}

static void push(struct fzq *z, const struct vio_used_elem *e, unsigned n)
{
	bool was = broken(z);
	struct vio_virtq_pos before = get_pos(z), after;
	int rc;

	snap_take(z);
	rc = vio_virtq_push_burst(&z->q.dev, e, n);
	if (was) {
		FZ_CHECK(rc == -EIO, "push on a broken queue returned %d", rc);
		snap_check(z, "push on a broken queue");
		return;
	}
	FZ_CHECK(rc == (int)n, "push of %u returned %d", n, rc);
	if (n)
		allow_used_area(z);
	snap_check(z, "push");
	after = get_pos(z);
	if (!z->packed) {
		FZ_CHECK(after.used_idx == (uint16_t)(before.used_idx + n), "split used idx moved by %u, pushed %u",
			 (uint16_t)(after.used_idx - before.used_idx), n);
		/* (The driver may scribble on used->idx; a push of nothing writes nothing.) */
		FZ_CHECK(!n || z->q.drv.l.split.used->idx == after.used_idx,
			 "used->idx not published");
	} else {
		for (unsigned i = 0; i < n; i++)
			advance(&before.used_idx, &before.used_wrap,
				e[i].ndesc && e[i].ndesc <= z->q.size ? e[i].ndesc : 1, z->q.size);
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
	rc = vio_virtq_pop_burst(&z->q.dev, z->map, chains, n);
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
		snap_allow(z, z->q.drv.l.packed.device_event, 4);
	snap_check(z, "pop");
	after = get_pos(z);
	for (int i = 0; i < rc; i++) {
		check_chain(z, &chains[i], (unsigned)i);
		if (z->packed)
			advance(&before.avail_idx, &before.avail_wrap, chains[i].ndesc, z->q.size);
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
	/* The driver's pointers: a broken device queue forgets its own. */
	struct vio_virtq_split *s = &z->q.drv.l.split;
	struct vio_virtq_packed *p = &z->q.drv.l.packed;

	if (op == 4) {
		/* The driver's side: what it asks of the device. */
		uint16_t a = fz_u16(in), b = fz_u16(in);

		if (z->packed) {
			p->driver_event->desc = a;
			p->driver_event->flags = b;
		} else {
			s->avail->flags = a;
			*vqh_split_used_event(&z->q) = b;
		}
		return;
	}
	snap_take(z);
	switch (op) {
	case 0:
		r = vio_virtq_device_should_notify(&z->q.dev);
		FZ_CHECK(!was || !r, "should_notify true on a broken queue");
		break;
	case 1:
		FZ_CHECK(vio_virtq_device_disable_notify(&z->q.dev) == (was ? -EIO : 0),
			 "disable_notify");
		break;
	case 2:
		r = vio_virtq_device_enable_notify(&z->q.dev);
		FZ_CHECK(!was || !r, "enable_notify true on a broken queue");
		break;
	default:
		r = vio_virtq_device_has_avail(&z->q.dev);
		FZ_CHECK(!was || !r, "has_avail true on a broken queue");
		break;
	}
	/* The words the device owns: used flags and avail event (split), its event structure (packed). */
	if (!was && (op == 1 || op == 2)) {
		if (z->packed) {
			snap_allow(z, p->device_event, 4);
		} else {
			snap_allow(z, &s->used->flags, 2);
			snap_allow(z, vqh_split_avail_event(&z->q), 2);
		}
	}
	snap_check(z, was ? "a notification call on a broken queue" : "a notification call");
	check_fault_count(z);
}

/* ---- set-up calls ---- */

void fzq_remap(struct fzq *z, struct fz *in)
{
	uint8_t sel = fz_u8(in) % 4;
	const struct vio_mem *maps[] = { &z->m.map, &z->map_a, &z->map_b, &z->map_none };
	bool was = broken(z);
	int rc;

	snap_take(z);
	rc = vio_virtq_remap(&z->q.dev, maps[sel]);
	snap_check(z, "remap");
	z->map = maps[sel];
	if (was)
		FZ_CHECK(rc == -EIO, "remap of a broken queue returned %d", rc);
	else if (sel < 2)
		FZ_CHECK(rc == 0, "remap onto a map holding the rings returned %d", rc);
	else
		FZ_CHECK(rc == -EFAULT &&
			 vio_virtq_fault_reason(&z->q.dev) == VIO_VQ_RINGS_GONE,
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
		pos.avail_idx %= z->q.size;
		pos.used_idx %= z->q.size;
	}
	snap_take(z);
	rc = vio_virtq_set_pos(&z->q.dev, &pos);
	snap_check(z, "set_pos");
	if (was) {
		FZ_CHECK(rc == -EIO, "set_pos on a broken queue returned %d", rc);
		return;
	}
	if (z->packed && (pos.avail_idx >= z->q.size || pos.used_idx >= z->q.size)) {
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
		FZ_CHECK(got.used_idx == z->q.drv.l.split.used->idx,
			 "split set_pos must take the used index from the ring");
	/* Chains held from before the move belong to a ring position that is gone. */
	z->nheld = 0;
}

void fzq_raw(struct fzq *z, struct fz *in)
{
	size_t off = fz_u16(in) % FZQ_A_LEN;
	size_t len = fz_u8(in);

	if (len > FZQ_A_LEN - off)
		len = FZQ_A_LEN - off;
	fz_bytes(in, z->m.host + off, len);
}
