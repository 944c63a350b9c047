/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the virtio-blk device's request path (blk_device.c: header
 * and segment parsing, the iovec helpers, the RAM engine) fed chains a
 * driver may legally post but shaped by the input: any request type,
 * sector, header cut anywhere, data split into up to 140 segments, status
 * byte alone or glued to the data, no writable part at all. The chains go
 * through a real driver-side queue (vio_virtq_add) to the device's queue
 * (tests/unit/vq_harness.c); the first input byte chooses the layout, the
 * negotiated features (indirect, event index, discard, write-zeroes) and a
 * read-only disk.
 *
 * The device is checked against a model of the disk and of the spec's
 * rules (virtio 1.2, 5.2.6): every request gets the status the rules give,
 * the used length they give, data read back equals what the model holds,
 * and the device writes nothing but the status byte and the data a read
 * asked for (every other byte of the request's memory keeps its pattern).
 * The input ends with a read of the whole disk against the model.
 */
#include <errno.h>

#include "fuzz.h"
#include "../unit/vq_harness.h"
#include "vio/blk.h"

#define DISK_BYTES (64u << 10)
#define CAPACITY (DISK_BYTES / 512)
#define NSLOTS 16
#define SLOT_BYTES (12u << 10)
#define MAX_SEGS 140 /* beyond what the device takes (126 data + 2): cut short */
#define MAX_DATA (8u * 512)
#define GAP 1        /* a byte between iovecs: no write may spill into it */
#define SERIAL "fuzzserial0123456789" /* 20 bytes: no terminator in the answer */
#define FZ_OPS 64

struct req {
	bool busy;
	uint8_t *buf;     /* its slot */
	size_t extent;    /* bytes of the slot the request and its margin cover */
	uint8_t pre[SLOT_BYTES]; /* the slot as posted */
	struct iovec iov[MAX_SEGS + 8]; /* up to 8 readable, up to MAX_SEGS writable */
	unsigned nout, nin;
	uint32_t out_bytes, in_bytes;
	uint8_t out[16 + 16 * 18 + MAX_DATA + 64]; /* the readable bytes, in order */
};

struct fzb {
	struct vqh_mem m;
	struct vqh_q q;
	struct vio_blk *blk;
	struct vio_vdev vdev;
	uint64_t features;     /* negotiated: DISCARD / WRITE_ZEROES only when agreed */
	uint32_t max_dwz;      /* sectors per discard / write-zeroes segment (config space) */
	bool readonly, started;
	struct req reqs[NSLOTS];
	unsigned inflight;
	uint8_t disk[DISK_BYTES]; /* the model */
	bool known[CAPACITY];     /* false after a discard: contents unspecified */
	unsigned notifies;
};

static void count_notify(void *opaque)
{
	(*(unsigned *)opaque)++;
}

static uint8_t canary(size_t off)
{
	return (uint8_t)(0xa5 ^ off ^ (off >> 8));
}

/* ---- the model: what the spec says the device must answer ---- */

static bool range_ok(uint64_t sector, uint64_t n)
{
	return sector <= CAPACITY && n <= CAPACITY - sector;
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

/* Expected status of a request whose chain the device takes whole and that has a status byte. */
static int expect_status(const struct fzb *b, const struct req *r)
{
	uint32_t type, out_data, in_data = r->in_bytes - 1;
	uint64_t sector;

	if (r->out_bytes < 16)
		return VIRTIO_BLK_S_IOERR;
	type = get32(r->out);
	sector = get64(r->out + 8);
	out_data = r->out_bytes - 16;
	switch (type) {
	case VIRTIO_BLK_T_IN:
		if (out_data || in_data % 512 || !range_ok(sector, in_data / 512))
			return VIRTIO_BLK_S_IOERR;
		return VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_OUT:
		if (in_data || b->readonly || out_data % 512 || !range_ok(sector, out_data / 512))
			return VIRTIO_BLK_S_IOERR;
		return VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_FLUSH:
		return VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_GET_ID:
		return out_data || !in_data ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		if (!(b->features & VIO_BIT(type == VIRTIO_BLK_T_DISCARD ? VIRTIO_BLK_F_DISCARD
									  : VIRTIO_BLK_F_WRITE_ZEROES)))
			return VIRTIO_BLK_S_UNSUPP; /* a command of a feature not agreed */
		if (in_data || b->readonly || !out_data || out_data % 16 || out_data / 16 > 16)
			return VIRTIO_BLK_S_IOERR;
		for (uint32_t i = 0; i < out_data / 16; i++) {
			const uint8_t *s = r->out + 16 + 16 * i;
			uint32_t num = get32(s + 8), flags = get32(s + 12);

			if (flags & ~VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP)
				return VIRTIO_BLK_S_UNSUPP;
			if (type == VIRTIO_BLK_T_DISCARD && flags)
				return VIRTIO_BLK_S_UNSUPP;
			if (num > b->max_dwz || !range_ok(get64(s), num))
				return VIRTIO_BLK_S_IOERR;
		}
		return VIRTIO_BLK_S_OK;
	default:
		return VIRTIO_BLK_S_UNSUPP;
	}
}

static bool all_poison(const uint8_t *p, size_t len)
{
	static uint8_t poison[SLOT_BYTES];

	if (!poison[0])
		memset(poison, 0x5a, sizeof(poison));
	return !memcmp(p, poison, len);
}

/* The writable part as one flat array (what the driver reads back). */
static void flatten_in(const struct req *r, uint8_t *w)
{
	for (unsigned k = r->nout; k < r->nout + r->nin; k++) {
		memcpy(w, r->iov[k].iov_base, r->iov[k].iov_len);
		w += r->iov[k].iov_len;
	}
}

/* Check a completed request against the model, then apply it to the model. */
static void complete(struct fzb *b, struct req *r, uint32_t len)
{
	static uint8_t w[SLOT_BYTES];
	bool answered = r->nin && r->nout + r->nin <= VIO_BLK_SEG_MAX + 2;
	uint32_t type = r->out_bytes >= 16 ? get32(r->out) : ~0u;
	uint64_t sector = r->out_bytes >= 16 ? get64(r->out + 8) : 0;
	uint32_t data = 0; /* writable bytes the device may have written before the status */
	uint32_t untouched = r->in_bytes; /* writable bytes from data on that must keep 0x5a */
	int st = -1;

	flatten_in(r, w);
	if (!answered) {
		/* Cut short (more segments than the device takes) or no status byte: no write. */
		FZ_CHECK(len == 0, "request without a usable status byte: used len %u", len);
	} else {
		st = expect_status(b, r);
		FZ_CHECK(w[r->in_bytes - 1] == st, "type %u sector %llu: status %u, want %d", type,
			 (unsigned long long)sector, w[r->in_bytes - 1], st);
		if (st == VIRTIO_BLK_S_OK && type == VIRTIO_BLK_T_IN)
			data = r->in_bytes - 1;
		else if (st == VIRTIO_BLK_S_OK && type == VIRTIO_BLK_T_GET_ID)
			data = r->in_bytes - 1 < 20 ? r->in_bytes - 1 : 20;
		FZ_CHECK(len == data + 1, "type %u status %d: used len %u, want %u", type, st, len,
			 data + 1);
		untouched = r->in_bytes - 1;
	}
	/* Every byte but the data asked for and the status byte keeps what the driver put there. */
	FZ_CHECK(all_poison(w + data, untouched - data),
		 "writable bytes past %u of %u written (status %d)", data, r->in_bytes, st);
	for (unsigned k = r->nout; k < r->nout + r->nin; k++)
		memcpy(r->pre + ((uint8_t *)r->iov[k].iov_base - r->buf), r->iov[k].iov_base,
		       r->iov[k].iov_len);
	FZ_CHECK(!memcmp(r->pre, r->buf, r->extent), "the device wrote outside the writable part");
	if (st != VIRTIO_BLK_S_OK)
		return;

	switch (type) {
	case VIRTIO_BLK_T_IN:
		/* Sector by sector (data starts on a sector); discarded ones are unspecified. */
		for (uint32_t i = 0; i < data; i += 512)
			FZ_CHECK(!b->known[sector + i / 512] ||
				 !memcmp(w + i, b->disk + sector * 512 + i, 512),
				 "read sector %llu differs from the model",
				 (unsigned long long)(sector + i / 512));
		break;
	case VIRTIO_BLK_T_OUT:
		memcpy(b->disk + sector * 512, r->out + 16, r->out_bytes - 16);
		for (uint32_t s = 0; s < (r->out_bytes - 16) / 512; s++)
			b->known[sector + s] = true;
		break;
	case VIRTIO_BLK_T_GET_ID:
		FZ_CHECK(!memcmp(w, SERIAL, data), "GET_ID answer");
		break;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		for (uint32_t i = 0; i < (r->out_bytes - 16) / 16; i++) {
			const uint8_t *s = r->out + 16 + 16 * i;
			uint64_t at = get64(s);
			uint32_t num = get32(s + 8);

			/* Discarded sectors read back unspecified; zeroed ones read zeroes. */
			for (uint32_t k = 0; k < num; k++) {
				b->known[at + k] = type == VIRTIO_BLK_T_WRITE_ZEROES;
				memset(b->disk + (at + k) * 512, 0, 512);
			}
		}
		break;
	}
}

/* ---- driving the device ---- */

static void reap(struct fzb *b)
{
	void *cookies[NSLOTS];
	uint32_t lens[NSLOTS];
	int n = vio_virtq_get_used_burst(&b->q.drv, cookies, lens, NSLOTS);

	FZ_CHECK(n >= 0, "get_used_burst: %d", n);
	for (int i = 0; i < n; i++) {
		struct req *r = cookies[i];

		FZ_CHECK(r >= b->reqs && r < b->reqs + NSLOTS && r->busy, "cookie not in flight");
		complete(b, r, lens[i]);
		r->busy = false;
		b->inflight--;
	}
}

/* Run the device until everything posted is answered (RAM completes inside the poll). */
static void drain(struct fzb *b)
{
	for (unsigned round = 0; b->inflight; round++) {
		int rc;

		vio_virtq_kick_prepare(&b->q.drv);
		rc = b->vdev.ops->queue_poll(b->vdev.dev, 0);
		FZ_CHECK(rc >= 0, "queue_poll: %d", rc);
		FZ_CHECK(!vio_virtq_is_broken(&b->q.dev), "a legal chain broke the device queue");
		reap(b);
		FZ_CHECK(round < 4, "%u requests never answered", b->inflight);
	}
}

/* Cut len bytes at p into at most n non-empty pieces, GAP apart; returns the bytes used. */
static size_t cut(struct fz *in, uint8_t *p, uint32_t len, unsigned n, struct iovec *iov,
		  unsigned *count)
{
	size_t off = 0;

	*count = 0;
	if (!len)
		return 0;
	if (n > len)
		n = len;
	if (!n)
		n = 1;
	for (unsigned i = 0; i < n; i++) {
		uint32_t left = len - (uint32_t)(off - *count * GAP);
		uint32_t l = i + 1 == n ? left : 1 + fz_u8(in) % (left - (n - 1 - i));

		iov[i].iov_base = p + off;
		iov[i].iov_len = l;
		off += l + GAP;
		(*count)++;
	}
	return off;
}

static const uint32_t types[] = {
	VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT, VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_GET_ID,
	VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_T_WRITE_ZEROES, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT,
	2, VIRTIO_BLK_T_GET_LIFETIME, VIRTIO_BLK_T_SECURE_ERASE,
};

static uint64_t sector_arg(struct fz *in)
{
	uint8_t m = fz_u8(in);

	return m & 0x80 ? fz_u64(in) : fz_u8(in) % (CAPACITY + 16);
}

/* Build the readable bytes of a request: header, then data or segments. */
static uint32_t build_out(struct fz *in, uint8_t *out, uint32_t *type_out, uint32_t *in_len)
{
	uint8_t sel = fz_u8(in), shape = fz_u8(in);
	uint32_t type = sel < 0xf0 ? types[sel % (sizeof(types) / sizeof(types[0]))] : fz_u32(in);
	uint64_t sector = sector_arg(in);
	uint32_t n = 0, nsec = fz_u8(in) % 9;

	memcpy(out, &type, 4);
	memset(out + 4, shape & 0x40 ? 0xff : 0, 4); /* reserved: nobody may care */
	memcpy(out + 8, &sector, 8);
	*in_len = 1;
	switch (type) {
	case VIRTIO_BLK_T_OUT:
		n = nsec * 512 + (shape & 1 ? fz_u8(in) : 0);
		for (uint32_t i = 0; i < n; i++)
			out[16 + i] = (uint8_t)(sector * 31 + i * 7 + shape);
		break;
	case VIRTIO_BLK_T_IN:
		*in_len = nsec * 512 + 1 + (shape & 1 ? fz_u8(in) : 0);
		break;
	case VIRTIO_BLK_T_GET_ID:
		*in_len = 1 + fz_u8(in) % 40;
		break;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES: {
		unsigned nseg = fz_u8(in) % 18;

		for (unsigned i = 0; i < nseg; i++) {
			uint64_t s = sector_arg(in);
			uint32_t num = fz_u8(in) & 0x80 ? fz_u32(in) : fz_u8(in) % 40;
			uint32_t fl = fz_u8(in) % 4;

			memcpy(out + 16 + 16 * i, &s, 8);
			memcpy(out + 24 + 16 * i, &num, 4);
			memcpy(out + 28 + 16 * i, &fl, 4);
		}
		n = 16 * nseg;
		break;
	}
	default:
		break;
	}
	if (shape & 2)
		*in_len += fz_u8(in) % 3; /* a writable part that fits no sector count */
	if (shape & 4)
		*in_len = 0;              /* no status byte */
	*type_out = type;
	n += 16;
	if (shape & 8) {
		uint32_t cutn = 1 + fz_u8(in) % 17; /* header or data cut short */

		n -= cutn > n ? n : cutn;
	}
	if (shape & 0x10)
		n += fz_u8(in) % 5;       /* trailing junk */
	return n;
}

static void submit(struct fzb *b, struct fz *in)
{
	struct req *r = NULL;
	uint32_t type, in_len;
	unsigned nout, nin, kout = fz_u8(in), kin = fz_u8(in);
	size_t off;
	int rc;

	if (b->inflight == NSLOTS)
		drain(b);
	for (unsigned i = 0; i < NSLOTS && !r; i++)
		if (!b->reqs[i].busy)
			r = &b->reqs[i];
	memset(r->out, 0, sizeof(r->out));
	r->out_bytes = build_out(in, r->out, &type, &in_len);
	/* The request, its gaps and a margin after it; the device may write none of the rest. */
	r->extent = r->out_bytes + in_len + (MAX_SEGS + 2) * GAP + 64;
	if (r->extent > SLOT_BYTES)
		r->extent = SLOT_BYTES;
	for (size_t i = 0; i < r->extent; i++)
		r->buf[i] = canary(i);
	/* Readable part in up to 8 pieces; writable part in up to 8, or up to 140 (cut short). */
	off = cut(in, r->buf, r->out_bytes, kout % 8 + 1, r->iov, &nout);
	for (unsigned k = 0; k < nout; k++)
		memcpy(r->iov[k].iov_base, r->out + ((uint8_t *)r->iov[k].iov_base - r->buf) -
		       k * GAP, r->iov[k].iov_len);
	cut(in, r->buf + off, in_len, kin & 0x80 ? 100 + kin % 41 : kin % 8 + 1, r->iov + nout,
	    &nin);
	for (unsigned k = nout; k < nout + nin; k++)
		memset(r->iov[k].iov_base, 0x5a, r->iov[k].iov_len);
	if (nout + nin == 0)
		return; /* nothing to post: a driver cannot */
	r->nout = nout;
	r->nin = nin;
	r->in_bytes = in_len;
	memcpy(r->pre, r->buf, r->extent);
	rc = vio_virtq_add(&b->q.drv, &b->m.map, r->iov, nout, nin, r);
	if (rc == -ENOSPC && b->inflight) {
		drain(b);
		rc = vio_virtq_add(&b->q.drv, &b->m.map, r->iov, nout, nin, r);
	}
	if (rc == -ENOSPC)
		return; /* longer than the ring: a driver cannot post it */
	FZ_CHECK(rc == 0, "vio_virtq_add: %d", rc);
	r->busy = true;
	b->inflight++;
}

/* Read the whole disk back through the device and compare with the model. */
static void verify_disk(struct fzb *b)
{
	for (uint64_t s = 0; s < CAPACITY; s += MAX_DATA / 512) {
		struct req *r = &b->reqs[0];
		uint32_t type = VIRTIO_BLK_T_IN;

		memset(r->buf, 0x5a, 16 + MAX_DATA + 1 + GAP);
		memcpy(r->out, &type, 4);
		memset(r->out + 4, 0, 4);
		memcpy(r->out + 8, &s, 8);
		memcpy(r->buf, r->out, 16);
		r->extent = 16 + GAP + MAX_DATA + 1 + GAP;
		memcpy(r->pre, r->buf, r->extent);
		r->iov[0] = (struct iovec){ r->buf, 16 };
		r->iov[1] = (struct iovec){ r->buf + 16 + GAP, MAX_DATA + 1 };
		r->nout = r->nin = 1;
		r->out_bytes = 16;
		r->in_bytes = MAX_DATA + 1;
		FZ_CHECK(vio_virtq_add(&b->q.drv, &b->m.map, r->iov, 1, 1, r) == 0, "verify add");
		r->busy = true;
		b->inflight++;
		drain(b);
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fz_log_init();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz in = { data, size };
	struct fzb *b = calloc(1, sizeof(*b));
	uint8_t fl = fz_u8(&in), sb = fz_u8(&in);
	bool packed = fl & 1, indirect = fl & 2;
	/* Indirect tables cost 16 bytes per entry per ring slot: keep those rings small. */
	uint16_t qsize = packed ? (uint16_t)(8 + sb % (indirect ? 57 : 249))
				: (uint16_t)(8u << (sb % (indirect ? 4 : 6)));
	uint64_t f = vqh_features(packed ? &vqh_packed : &vqh_split,
				  (indirect ? vqh_bit(VIRTIO_F_INDIRECT_DESC) : 0) |
				  (fl & 4 ? vqh_bit(VIRTIO_F_EVENT_IDX) : 0) |
				  (fl & 0x10 ? vqh_bit(VIRTIO_BLK_F_DISCARD) : 0) |
				  (fl & 0x20 ? vqh_bit(VIRTIO_BLK_F_WRITE_ZEROES) : 0));
	struct vio_blk_opts o = { .name = "fuzz blk", .ram_size = DISK_BYTES,
				  .readonly = fl & 8, .serial = SERIAL };
	struct vio_vq_ctx ctx;

	if (!b)
		abort();
	b->readonly = o.readonly;
	memset(b->known, 1, sizeof(b->known)); /* a new RAM disk reads zeroes */
	FZ_CHECK(vio_blk_new(&o, &b->blk) == 0, "vio_blk_new");
	b->vdev = vio_blk_vdev(b->blk);
	f &= b->vdev.ops->get_features(b->vdev.dev); /* a read-only disk offers no discard */
	b->features = f;
	FZ_CHECK(b->vdev.ops->get_config(b->vdev.dev,
					 offsetof(struct virtio_blk_config, max_discard_sectors),
					 &b->max_dwz, 4) == 0, "get_config");
	if (vqh_mem_init(&b->m, vqh_q_bytes(f, qsize, indirect ? MAX_SEGS : 0) +
			       NSLOTS * SLOT_BYTES + 4096) ||
	    vqh_q_init(&b->q, &b->m, f, qsize, indirect ? MAX_SEGS : 0))
		abort();
	for (unsigned i = 0; i < NSLOTS; i++)
		if (!(b->reqs[i].buf = vqh_mem_alloc(&b->m, SLOT_BYTES, 16)))
			abort();
	ctx = (struct vio_vq_ctx){ &b->q.dev, &b->m.map, count_notify, &b->notifies };
	FZ_CHECK(b->vdev.ops->queue_start(b->vdev.dev, 0, &ctx, f) == 0, "queue_start");

	for (unsigned ops = 0; ops < FZ_OPS && !fz_empty(&in); ops++) {
		if (fz_u8(&in) % 4 == 3)
			drain(b);
		else
			submit(b, &in);
	}
	drain(b);
	verify_disk(b);
	FZ_CHECK(b->q.nfaults == 0, "the device queue faulted");

	b->vdev.ops->queue_stop(b->vdev.dev, 0);
	vio_blk_free(b->blk);
	vqh_q_fini(&b->q);
	vqh_mem_fini(&b->m);
	free(b);
	return 0;
}
