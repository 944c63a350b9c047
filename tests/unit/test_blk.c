/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk device and blk client against each other in one process, both
 * layouts, no transport: one memory region (gpa != host), driver-side and
 * device-side queues over the same rings. Every request type with its data
 * checked, RAM and io_uring engines (buffered and O_DIRECT on a temp file),
 * multi-queue, read-only, every misshaped request answered without touching
 * the store, broken rings, and a deep io_uring queue.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "test_util.h"
#include "vio/blk.h"
#include "vio/blk_client.h"
#include "core/device.h"
#include "vq_harness.h"

#define NQ_MAX 4
#define DISK (4u << 20)
#define SECTORS (DISK / 512)
#define BUF_LEN (1u << 20)
#define TMO 5000
#define RAW_COOKIE ((void *)0x1)
#define DWZ struct virtio_blk_discard_write_zeroes

struct pair {
	const struct vqh_layout *l;
	uint64_t features;
	struct vqh_mem m;
	struct vqh_q qs[NQ_MAX];
	unsigned nq;
	struct vio_blk *blk;
	struct vio_vdev vdev;
	struct vio_blk_client *cl;
	unsigned notifies[NQ_MAX], kicks[NQ_MAX];
	uint8_t *buf; /* data buffers, in the shared region, 4096-aligned */
	uint8_t *raw; /* raw request bytes, in the shared region */
	int poll_err;
	char path[64];
};

static void count_notify(void *opaque)
{
	(*(unsigned *)opaque)++;
}

static int run_device(void *opaque)
{
	struct pair *p = opaque;

	for (unsigned q = 0; q < p->nq; q++) {
		int rc = p->vdev.ops->queue_poll(p->vdev.dev, q);

		if (rc < 0)
			p->poll_err = rc;
	}
	return 0;
}

static int pair_open(struct pair *p, const struct vqh_layout *l, const struct vio_blk_opts *o,
		     unsigned nq, uint16_t qsize, uint16_t indirect_max)
{
	struct vio_drv_ctx dctx[NQ_MAX];
	size_t area;
	void *cl_area;
	int rc;

	memset(p, 0, sizeof(*p));
	p->l = l;
	p->nq = nq;
	rc = vio_blk_new(o, &p->blk);
	if (rc)
		return rc;
	p->vdev = vio_blk_vdev(p->blk);
	/* The device's own feature bits (0-23) as a driver would accept them all. */
	p->features = vqh_features(l, vqh_bit(VIRTIO_F_EVENT_IDX) |
					  (indirect_max ? vqh_bit(VIRTIO_F_INDIRECT_DESC) : 0)) |
		      (p->vdev.ops->get_features(p->vdev.dev) & ((1ull << 24) - 1));
	assert_int_equal(p->features & ~p->vdev.ops->get_features(p->vdev.dev), 0);
	assert_int_equal(vqh_mem_init(&p->m, nq * vqh_q_bytes(p->features, qsize, indirect_max) +
						  2 * BUF_LEN + (1u << 20)), 0);
	for (unsigned q = 0; q < nq; q++) {
		struct vio_vq_ctx ctx;

		assert_int_equal(vqh_q_init(&p->qs[q], &p->m, p->features, qsize, indirect_max), 0);
		ctx = (struct vio_vq_ctx){ &p->qs[q].dev, &p->m.map, count_notify,
					   &p->notifies[q] };
		assert_int_equal(p->vdev.ops->queue_start(p->vdev.dev, q, &ctx, p->features), 0);
		dctx[q] = (struct vio_drv_ctx){ &p->qs[q].drv, &p->m.map, count_notify,
						&p->kicks[q], -1 };
	}
	p->buf = vqh_mem_alloc(&p->m, BUF_LEN, 4096);
	p->raw = vqh_mem_alloc(&p->m, BUF_LEN, 4096);
	area = vio_blk_client_area_size(dctx, nq);
	cl_area = vqh_mem_alloc(&p->m, area, 64);
	assert_non_null(p->buf);
	assert_non_null(p->raw);
	assert_non_null(cl_area);
	assert_int_equal(vio_blk_client_new(dctx, nq, cl_area, area, &p->cl), 0);
	return 0;
}

static void pair_close(struct pair *p)
{
	for (unsigned q = 0; q < p->nq; q++)
		p->vdev.ops->queue_stop(p->vdev.dev, q);
	vio_blk_client_free(p->cl);
	vio_blk_free(p->blk);
	for (unsigned q = 0; q < p->nq; q++)
		vqh_q_fini(&p->qs[q]);
	vqh_mem_fini(&p->m);
	if (p->path[0])
		unlink(p->path);
}

static int sync_req(struct pair *p, unsigned q, const struct vio_blk_client_req *r, uint32_t *len)
{
	uint32_t l = 0xdeadbeef;
	int st = vio_blk_client_sync(p->cl, q, r, run_device, p, TMO, &l);

	assert_int_equal(p->poll_err, 0);
	if (len)
		*len = l;
	return st;
}

static int rw(struct pair *p, unsigned q, bool write, uint64_t sector, void *buf, size_t len,
	      uint32_t *wlen)
{
	struct iovec iov = { buf, len };
	struct vio_blk_client_req r = { .type = write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN,
					.sector = sector, .iov = &iov, .niov = len ? 1 : 0 };

	return sync_req(p, q, &r, wlen);
}

static int dwz(struct pair *p, uint32_t type, uint64_t sector, uint32_t n, uint32_t flags)
{
	struct vio_blk_client_req r = { .type = type, .seg_sector = sector, .num_sectors = n,
					.flags = flags };

	return sync_req(p, 0, &r, NULL);
}

/* ---- every request type, data verified ---- */

static void exercise_all(struct pair *p)
{
	uint8_t *w = p->buf, *r = p->buf + BUF_LEN / 2;
	struct iovec iov[4];
	struct vio_blk_client_req req;
	uint32_t len;

	/* Write 64 KiB at sector 100 from four iovecs, read it back in one. */
	vqh_fill(w, 65536, 1, 0, 7);
	for (int i = 0; i < 4; i++)
		iov[i] = (struct iovec){ w + i * 16384, 16384 };
	req = (struct vio_blk_client_req){ .type = VIRTIO_BLK_T_OUT, .sector = 100, .iov = iov,
					   .niov = 4 };
	assert_int_equal(sync_req(p, 0, &req, &len), VIRTIO_BLK_S_OK);
	assert_int_equal(len, 1);
	memset(r, 0xaa, 65536);
	assert_int_equal(rw(p, 0, false, 100, r, 65536, &len), VIRTIO_BLK_S_OK);
	assert_int_equal(len, 65536 + 1);
	assert_int_equal(vqh_check(r, 65536, 1, 0, 7), -1);

	/* Last sector of the disk. */
	vqh_fill(w, 512, 2, 0, 7);
	assert_int_equal(rw(p, 0, true, SECTORS - 1, w, 512, NULL), VIRTIO_BLK_S_OK);
	assert_int_equal(rw(p, 0, false, SECTORS - 1, r, 512, NULL), VIRTIO_BLK_S_OK);
	assert_memory_equal(r, w, 512);

	/* Flush. */
	req = (struct vio_blk_client_req){ .type = VIRTIO_BLK_T_FLUSH };
	assert_int_equal(sync_req(p, 0, &req, &len), VIRTIO_BLK_S_OK);
	assert_int_equal(len, 1);

	/* GET_ID: the serial, NUL-padded to 20 bytes. */
	memset(r, 0xaa, 20);
	iov[0] = (struct iovec){ r, 20 };
	req = (struct vio_blk_client_req){ .type = VIRTIO_BLK_T_GET_ID, .iov = iov, .niov = 1 };
	assert_int_equal(sync_req(p, 0, &req, &len), VIRTIO_BLK_S_OK);
	assert_int_equal(len, 21);
	assert_memory_equal(r, "serial-42\0\0\0\0\0\0\0\0\0\0\0", 20);

	/* Write zeroes (both unmap settings) read back as zeroes; neighbours intact. */
	assert_int_equal(dwz(p, VIRTIO_BLK_T_WRITE_ZEROES, 104, 8, 0), VIRTIO_BLK_S_OK);
	assert_int_equal(dwz(p, VIRTIO_BLK_T_WRITE_ZEROES, 116, 16,
			     VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP), VIRTIO_BLK_S_OK);
	assert_int_equal(rw(p, 0, false, 100, r, 65536, NULL), VIRTIO_BLK_S_OK);
	assert_int_equal(vqh_check(r, 4 * 512, 1, 0, 7), -1);
	assert_true(all_byte(r + 4 * 512, 8 * 512, 0));
	assert_int_equal(vqh_check(r + 12 * 512, 4 * 512, 1, 12 * 512, 7), -1);
	assert_true(all_byte(r + 16 * 512, 16 * 512, 0));
	assert_int_equal(vqh_check(r + 32 * 512, 32 * 512, 1, 32 * 512, 7), -1);

	/* Discard is accepted; the data after it is unspecified. */
	assert_int_equal(dwz(p, VIRTIO_BLK_T_DISCARD, 0, 64, 0), VIRTIO_BLK_S_OK);
	assert_int_equal(dwz(p, VIRTIO_BLK_T_DISCARD, SECTORS - 8, 8, 0), VIRTIO_BLK_S_OK);
	/* Unknown types. */
	req = (struct vio_blk_client_req){ .type = 99 };
	assert_int_equal(sync_req(p, 0, &req, &len), VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(len, 1);
	req.type = VIRTIO_BLK_T_GET_LIFETIME;
	assert_int_equal(sync_req(p, 0, &req, NULL), VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(vio_blk_client_inflight(p->cl, 0), 0);
}

/*
 * Writes whose iovecs cut cache lines anywhere (odd lengths, unaligned
 * buffers), so that each iovec after the first lands mid-line in the
 * store: the RAM engine streams whole lines and copies the edges.
 */
static void odd_iovecs(struct pair *p)
{
	static const size_t cut[][3] = { { 100, 1000, 2996 }, { 1, 63, 4032 }, { 4095, 1, 0 } };
	uint8_t *w = p->buf + 3, *r = p->buf + BUF_LEN / 2;
	struct iovec iov[3];
	struct vio_blk_client_req req;

	for (unsigned k = 0; k < 3; k++) {
		uint64_t sector = 300 + 8 * k;
		size_t at = 0;
		unsigned n = 0;

		vqh_fill(w, 4096, 3 + k, 0, 7);
		for (unsigned i = 0; i < 3 && cut[k][i]; i++) {
			iov[n++] = (struct iovec){ w + at, cut[k][i] };
			at += cut[k][i];
		}
		assert_int_equal(at, 4096);
		req = (struct vio_blk_client_req){ .type = VIRTIO_BLK_T_OUT, .sector = sector,
						   .iov = iov, .niov = n };
		assert_int_equal(sync_req(p, 0, &req, NULL), VIRTIO_BLK_S_OK);
		memset(r, 0xaa, 4096);
		assert_int_equal(rw(p, 0, false, sector, r, 4096, NULL), VIRTIO_BLK_S_OK);
		assert_int_equal(vqh_check(r, 4096, 3 + k, 0, 7), -1);
	}
}

static void test_ram_all(void **state)
{
	struct vio_blk_opts o = { .ram_size = DISK, .serial = "serial-42" };
	struct pair p;

	assert_int_equal(pair_open(&p, *state, &o, 1, 128, 8), 0);
	assert_int_equal(vio_blk_capacity_bytes(p.blk), DISK);
	assert_int_equal(p.vdev.ops->queue_wait_fd(p.vdev.dev, 0), -1);
	exercise_all(&p);
	odd_iovecs(&p);
	assert_true(p.notifies[0] > 0);
	assert_true(p.kicks[0] > 0);
	pair_close(&p);
}

static int temp_file_in(const char *dir, char *path, size_t n, uint64_t size)
{
	int fd;

	snprintf(path, n, "%s/vio-blk-XXXXXX", dir);
	fd = mkstemp(path);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size)) {
		close(fd);
		unlink(path);
		return -errno;
	}
	return fd;
}

static int temp_file(char *path, size_t n, uint64_t size)
{
	return temp_file_in("/var/tmp", path, n, size);
}

static void test_uring_all(void **state)
{
	struct vio_blk_opts o = { .serial = "serial-42" };
	char path[64];
	uint8_t check[512];
	struct pair p;
	int fd, rc;

	fd = temp_file(path, sizeof(path), DISK);
	assert_true(fd >= 0);
	o.file = path;
	rc = pair_open(&p, *state, &o, 1, 128, 8);
	if (rc == -ENOTSUP) {
		print_message("SKIP: libvio built without io_uring\n");
		close(fd);
		unlink(path);
		skip();
	}
	assert_int_equal(rc, 0);
	snprintf(p.path, sizeof(p.path), "%s", path);
	assert_true(p.vdev.ops->queue_wait_fd(p.vdev.dev, 0) >= 0);
	exercise_all(&p);
	/* The file itself holds what was written (sector 100 from exercise_all). */
	assert_int_equal(pread(fd, check, 512, 100 * 512), 512);
	assert_int_equal(vqh_check(check, 512, 1, 0, 7), -1);
	close(fd);
	pair_close(&p);
}

/*
 * A tmpfs file: tmpfs cannot zero a range in place (FALLOC_FL_ZERO_RANGE is
 * refused), so write-zeroes without unmap goes the engine's way of last
 * resort, writing zero buffers, asynchronously like everything else.
 */
static void test_uring_tmpfs(void **state)
{
	struct vio_blk_opts o = { .serial = "serial-42" };
	char path[64];
	struct pair p;
	int fd, rc;

	fd = temp_file_in("/dev/shm", path, sizeof(path), DISK);
	assert_true(fd >= 0);
	assert_int_equal(fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 0, 4096), -1);
	assert_int_equal(errno, EOPNOTSUPP); /* the premise: the fallback path is the one taken */
	o.file = path;
	rc = pair_open(&p, *state, &o, 1, 128, 8);
	if (rc == -ENOTSUP) {
		print_message("SKIP: libvio built without io_uring\n");
		close(fd);
		unlink(path);
		skip();
	}
	assert_int_equal(rc, 0);
	snprintf(p.path, sizeof(p.path), "%s", path);
	exercise_all(&p);
	close(fd);
	pair_close(&p);
}

static void test_uring_direct(void **state)
{
	struct vio_blk_opts o = { .serial = "serial-42", .direct = true };
	char path[64];
	struct iovec iov[2];
	struct vio_blk_client_req req;
	struct pair p;
	int fd, rc;

	fd = temp_file(path, sizeof(path), DISK);
	assert_true(fd >= 0);
	close(fd);
	o.file = path;
	rc = pair_open(&p, *state, &o, 1, 128, 8);
	if (rc == -ENOTSUP || rc == -EINVAL) {
		print_message("SKIP: %s\n", rc == -ENOTSUP ? "libvio built without io_uring"
							   : "O_DIRECT not supported on /var/tmp");
		unlink(path);
		skip();
	}
	assert_int_equal(rc, 0);
	snprintf(p.path, sizeof(p.path), "%s", path);
	exercise_all(&p);
	/* Two 256-byte iovecs: a legal request O_DIRECT cannot do; IOERR, store untouched. */
	vqh_fill(p.buf, 512, 9, 0, 3);
	assert_int_equal(rw(&p, 0, true, 8, p.buf, 512, NULL), VIRTIO_BLK_S_OK);
	memset(p.buf, 0x55, 512);
	iov[0] = (struct iovec){ p.buf, 256 };
	iov[1] = (struct iovec){ p.buf + 1024, 256 };
	req = (struct vio_blk_client_req){ .type = VIRTIO_BLK_T_OUT, .sector = 8, .iov = iov,
					   .niov = 2 };
	assert_int_equal(sync_req(&p, 0, &req, NULL), VIRTIO_BLK_S_IOERR);
	assert_int_equal(rw(&p, 0, false, 8, p.buf + 4096, 512, NULL), VIRTIO_BLK_S_OK);
	assert_int_equal(vqh_check(p.buf + 4096, 512, 9, 0, 3), -1);
	pair_close(&p);
}

/* ---- config and features ---- */

static void test_config(void **state)
{
	struct vio_blk_opts o = { .ram_size = DISK, .queues = 3 };
	struct virtio_blk_config cfg;
	struct pair p;
	uint64_t f;
	uint8_t b;

	assert_int_equal(pair_open(&p, *state, &o, 1, 64, 0), 0);
	assert_int_equal(p.vdev.ops->config_len(p.vdev.dev), 60);
	memset(&cfg, 0xff, sizeof(cfg));
	assert_int_equal(p.vdev.ops->get_config(p.vdev.dev, 0, &cfg, 60), 0);
	assert_int_equal(cfg.capacity, SECTORS);
	assert_int_equal(cfg.seg_max, VIO_BLK_SEG_MAX);
	assert_int_equal(cfg.blk_size, 512);
	assert_int_equal(cfg.num_queues, 3);
	assert_int_equal(cfg.max_discard_seg, VIO_BLK_MAX_DWZ_SEG);
	assert_int_equal(cfg.max_write_zeroes_seg, VIO_BLK_MAX_DWZ_SEG);
	assert_int_equal(cfg.unused0, 0);
	assert_int_equal(p.vdev.ops->get_config(p.vdev.dev, 34, &cfg.num_queues, 2), 0);
	assert_int_equal(p.vdev.ops->get_config(p.vdev.dev, 60, &b, 1), -EINVAL);
	assert_int_equal(p.vdev.ops->get_config(p.vdev.dev, UINT32_MAX, &b, 2), -EINVAL);
	assert_int_equal(p.vdev.ops->max_queues(p.vdev.dev), 3);
	f = p.vdev.ops->get_features(p.vdev.dev);
	assert_true(f & VIO_BIT(VIRTIO_BLK_F_FLUSH));
	assert_true(f & VIO_BIT(VIRTIO_BLK_F_DISCARD));
	assert_true(f & VIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES));
	assert_true(f & VIO_BIT(VIRTIO_BLK_F_MQ));
	assert_true(f & VIO_BIT(VIRTIO_F_RING_PACKED));
	assert_false(f & VIO_BIT(VIRTIO_BLK_F_RO));
	/* queue_start checks. */
	assert_int_equal(p.vdev.ops->queue_start(p.vdev.dev, 3, NULL, 0), -EINVAL);
	pair_close(&p);

	o.queues = VIO_BLK_MAX_QUEUES + 1;
	assert_int_equal(vio_blk_new(&o, &p.blk), -EINVAL);
	o = (struct vio_blk_opts){ .ram_size = 1000 };
	assert_int_equal(vio_blk_new(&o, &p.blk), -EINVAL);
	o = (struct vio_blk_opts){ 0 };
	assert_int_equal(vio_blk_new(&o, &p.blk), -EINVAL);
}

/* ---- multi-queue ---- */

static void test_multiqueue(void **state)
{
	struct vio_blk_opts o = { .ram_size = DISK, .queues = NQ_MAX };
	struct pair p;

	assert_int_equal(pair_open(&p, *state, &o, NQ_MAX, 64, 0), 0);
	for (unsigned q = 0; q < NQ_MAX; q++) {
		vqh_fill(p.buf + q * 4096, 4096, q, 0, 11);
		assert_int_equal(rw(&p, q, true, q * 8, p.buf + q * 4096, 4096, NULL),
				 VIRTIO_BLK_S_OK);
	}
	/* Read each block through a different queue from the one that wrote it. */
	for (unsigned q = 0; q < NQ_MAX; q++) {
		uint8_t *r = p.buf + BUF_LEN / 2;
		unsigned wq = (q + 1) % NQ_MAX;

		assert_int_equal(rw(&p, q, false, wq * 8, r, 4096, NULL), VIRTIO_BLK_S_OK);
		assert_int_equal(vqh_check(r, 4096, wq, 0, 11), -1);
	}
	for (unsigned q = 0; q < NQ_MAX; q++) {
		assert_true(p.kicks[q] > 0);
		assert_true(p.notifies[q] > 0);
	}
	pair_close(&p);
}

/* ---- read-only ---- */

static void test_readonly(void **state)
{
	struct vio_blk_opts o = { .ram_size = DISK, .readonly = true };
	struct pair p;
	uint64_t f;

	assert_int_equal(pair_open(&p, *state, &o, 1, 64, 0), 0);
	f = p.vdev.ops->get_features(p.vdev.dev);
	assert_true(f & VIO_BIT(VIRTIO_BLK_F_RO));
	assert_false(f & VIO_BIT(VIRTIO_BLK_F_DISCARD));
	memset(p.buf, 0x77, 4096);
	assert_int_equal(rw(&p, 0, true, 0, p.buf, 4096, NULL), VIRTIO_BLK_S_IOERR);
	/* Not offered, so not negotiated: unsupported, and the store is untouched. */
	assert_int_equal(dwz(&p, VIRTIO_BLK_T_DISCARD, 0, 8, 0), VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(dwz(&p, VIRTIO_BLK_T_WRITE_ZEROES, 0, 8, 0), VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(rw(&p, 0, false, 0, p.buf, 4096, NULL), VIRTIO_BLK_S_OK);
	assert_true(all_byte(p.buf, 4096, 0));
	pair_close(&p);
}

/* A driver that did not accept DISCARD / WRITE_ZEROES gets them refused as unsupported. */
static void test_unnegotiated_dwz(void **state)
{
	struct vio_blk_opts o = { .ram_size = DISK };
	struct vio_vq_ctx ctx;
	struct pair p;

	assert_int_equal(pair_open(&p, *state, &o, 1, 64, 0), 0);
	p.vdev.ops->queue_stop(p.vdev.dev, 0);
	ctx = (struct vio_vq_ctx){ &p.qs[0].dev, &p.m.map, count_notify, &p.notifies[0] };
	assert_int_equal(p.vdev.ops->queue_start(p.vdev.dev, 0, &ctx, p.features &
						 ~(VIO_BIT(VIRTIO_BLK_F_DISCARD) |
						   VIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES))), 0);
	vqh_fill(p.buf, 4096, 5, 0, 3);
	assert_int_equal(rw(&p, 0, true, 0, p.buf, 4096, NULL), VIRTIO_BLK_S_OK);
	assert_int_equal(dwz(&p, VIRTIO_BLK_T_DISCARD, 0, 8, 0), VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(dwz(&p, VIRTIO_BLK_T_WRITE_ZEROES, 0, 8, 0), VIRTIO_BLK_S_UNSUPP);
	memset(p.buf, 0, 4096);
	assert_int_equal(rw(&p, 0, false, 0, p.buf, 4096, NULL), VIRTIO_BLK_S_OK);
	assert_int_equal(vqh_check(p.buf, 4096, 5, 0, 3), -1);
	pair_close(&p);
}

/* ---- misshaped requests, posted raw on the driver queue ---- */

/* Post iov[0, nout) readable, rest writable; run the device; reap. Returns the used length. */
static uint32_t raw_req(struct pair *p, const struct iovec *iov, unsigned nout, unsigned nin)
{
	void *cookie = NULL;
	uint32_t len = 0;
	int got = 0;

	assert_int_equal(vio_virtq_add(&p->qs[0].drv, &p->m.map, iov, nout, nin, RAW_COOKIE), 0);
	vio_virtq_kick_prepare(&p->qs[0].drv);
	for (int i = 0; i < 100 && got == 0; i++) {
		assert_true(p->vdev.ops->queue_poll(p->vdev.dev, 0) >= 0);
		got = vio_virtq_get_used_burst(&p->qs[0].drv, &cookie, &len, 1);
	}
	assert_int_equal(got, 1);
	assert_ptr_equal(cookie, RAW_COOKIE);
	return len;
}

static struct virtio_blk_outhdr *hdr_at(struct pair *p, unsigned slot, uint32_t type,
					 uint64_t sector)
{
	struct virtio_blk_outhdr *h = (void *)(p->raw + slot * 64);

	*h = (struct virtio_blk_outhdr){ .type = type, .sector = sector };
	return h;
}

static void fill_disk(struct pair *p)
{
	uint8_t *b = p->buf;

	for (uint32_t off = 0; off < DISK; off += BUF_LEN / 2) {
		vqh_fill(b, BUF_LEN / 2, 5, off, 1);
		assert_int_equal(rw(p, 0, true, off / 512, b, BUF_LEN / 2, NULL), VIRTIO_BLK_S_OK);
	}
}

static void check_disk(struct pair *p)
{
	uint8_t *b = p->buf + BUF_LEN / 2;

	for (uint32_t off = 0; off < DISK; off += BUF_LEN / 2) {
		assert_int_equal(rw(p, 0, false, off / 512, b, BUF_LEN / 2, NULL), VIRTIO_BLK_S_OK);
		assert_int_equal(vqh_check(b, BUF_LEN / 2, 5, off, 1), -1);
	}
}

static void expect_status(struct pair *p, const struct iovec *iov, unsigned nout, unsigned nin,
			  uint8_t *status, uint8_t want, uint32_t want_len)
{
	*status = 0xee;
	assert_int_equal(raw_req(p, iov, nout, nin), want_len);
	assert_int_equal(*status, want);
}

static void test_misshaped(void **state)
{
	struct vio_blk_opts o = { .ram_size = DISK };
	struct virtio_blk_discard_write_zeroes *seg;
	uint8_t *data, *st, *big;
	struct iovec iov[160];
	struct pair p;

	assert_int_equal(pair_open(&p, *state, &o, 1, 256, 256), 0);
	fill_disk(&p);
	data = p.raw + 8192;
	st = p.raw + 4000;
	big = p.raw + 65536;
	memset(data, 0x99, 8192);

#define H(type, sector) ((struct iovec){ hdr_at(&p, 0, type, sector), 16 })
#define S ((struct iovec){ st, 1 })
#define D(n) ((struct iovec){ data, n })

	/* Beyond capacity: straddling the end, starting past it, sector overflow. */
	iov[0] = H(VIRTIO_BLK_T_OUT, SECTORS - 1); iov[1] = D(1024); iov[2] = S;
	expect_status(&p, iov, 2, 1, st, VIRTIO_BLK_S_IOERR, 1);
	iov[0] = H(VIRTIO_BLK_T_IN, SECTORS - 1); iov[1] = D(1024); iov[2] = S;
	expect_status(&p, iov, 1, 2, st, VIRTIO_BLK_S_IOERR, 1);
	iov[0] = H(VIRTIO_BLK_T_OUT, SECTORS); iov[1] = D(512); iov[2] = S;
	expect_status(&p, iov, 2, 1, st, VIRTIO_BLK_S_IOERR, 1);
	iov[0] = H(VIRTIO_BLK_T_OUT, UINT64_MAX); iov[1] = D(512); iov[2] = S;
	expect_status(&p, iov, 2, 1, st, VIRTIO_BLK_S_IOERR, 1);
	iov[0] = H(VIRTIO_BLK_T_OUT, 1ull << 55); iov[1] = D(512); iov[2] = S;
	expect_status(&p, iov, 2, 1, st, VIRTIO_BLK_S_IOERR, 1);
	iov[0] = H(VIRTIO_BLK_T_IN, UINT64_MAX - 1); iov[1] = D(1024); iov[2] = S;
	expect_status(&p, iov, 1, 2, st, VIRTIO_BLK_S_IOERR, 1);
	/* Length not a multiple of 512. */
	iov[0] = H(VIRTIO_BLK_T_OUT, 0); iov[1] = D(100); iov[2] = S;
	expect_status(&p, iov, 2, 1, st, VIRTIO_BLK_S_IOERR, 1);
	iov[0] = H(VIRTIO_BLK_T_IN, 0); iov[1] = D(513); iov[2] = S;
	expect_status(&p, iov, 1, 2, st, VIRTIO_BLK_S_IOERR, 1);
	/* No status byte: nothing to answer with, used length 0, store untouched. */
	iov[0] = H(VIRTIO_BLK_T_OUT, 0); iov[1] = D(512);
	assert_int_equal(raw_req(&p, iov, 2, 0), 0);
	/* Header too short. */
	iov[0] = (struct iovec){ hdr_at(&p, 0, VIRTIO_BLK_T_OUT, 0), 8 }; iov[1] = S;
	expect_status(&p, iov, 1, 1, st, VIRTIO_BLK_S_IOERR, 1);
	/* Data in the wrong direction. */
	iov[0] = H(VIRTIO_BLK_T_IN, 0); iov[1] = D(512); iov[2] = S;
	expect_status(&p, iov, 2, 1, st, VIRTIO_BLK_S_IOERR, 1);
	iov[0] = H(VIRTIO_BLK_T_OUT, 0); iov[1] = D(512); iov[2] = S;
	expect_status(&p, iov, 1, 2, st, VIRTIO_BLK_S_IOERR, 1);
	iov[0] = H(VIRTIO_BLK_T_GET_ID, 0); iov[1] = D(20); iov[2] = S;
	expect_status(&p, iov, 2, 1, st, VIRTIO_BLK_S_IOERR, 1);
	/* Unknown type, with or without data. */
	iov[0] = H(0x7777, 0); iov[1] = D(512); iov[2] = S;
	expect_status(&p, iov, 2, 1, st, VIRTIO_BLK_S_UNSUPP, 1);

	/* Discard / write-zeroes segments. */
	seg = (void *)(p.raw + 1024);
	for (int i = 0; i < 17; i++)
		seg[i] = (DWZ){ .sector = i * 8, .num_sectors = 8 };
	iov[0] = H(VIRTIO_BLK_T_WRITE_ZEROES, 0);
	iov[1] = (struct iovec){ seg, 17 * 16 }; iov[2] = S; /* too many segments */
	expect_status(&p, iov, 2, 1, st, VIRTIO_BLK_S_IOERR, 1);
	iov[1] = (struct iovec){ seg, 20 }; /* not a multiple of 16 */
	expect_status(&p, iov, 2, 1, st, VIRTIO_BLK_S_IOERR, 1);
	iov[1] = S; /* no segment at all */
	expect_status(&p, iov, 1, 1, st, VIRTIO_BLK_S_IOERR, 1);
	/* The second of two segments is bad: the first must not have been zeroed. */
	seg[1] = (DWZ){ .sector = SECTORS - 4, .num_sectors = 8 };
	iov[1] = (struct iovec){ seg, 32 }; iov[2] = S;
	expect_status(&p, iov, 2, 1, st, VIRTIO_BLK_S_IOERR, 1);
	seg[1] = (DWZ){ .sector = UINT64_MAX, .num_sectors = 8 };
	expect_status(&p, iov, 2, 1, st, VIRTIO_BLK_S_IOERR, 1);
	seg[1] = (DWZ){ .sector = 0, .num_sectors = VIO_BLK_MAX_DWZ_SECTORS + 1 };
	expect_status(&p, iov, 2, 1, st, VIRTIO_BLK_S_IOERR, 1);
	seg[1] = (DWZ){ .sector = 8, .num_sectors = 8, .flags = 2 }; /* unknown flag */
	expect_status(&p, iov, 2, 1, st, VIRTIO_BLK_S_UNSUPP, 1);
	/* Discard with unmap set: UNSUPP (spec 5.2.6.2). */
	iov[0] = H(VIRTIO_BLK_T_DISCARD, 0);
	seg[1] = (DWZ){ .sector = 8, .num_sectors = 8 };
	seg[1].flags = VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP;
	expect_status(&p, iov, 2, 1, st, VIRTIO_BLK_S_UNSUPP, 1);
	/* Writable data on a write-zeroes. */
	iov[0] = H(VIRTIO_BLK_T_WRITE_ZEROES, 0);
	iov[1] = (struct iovec){ seg, 16 }; iov[2] = D(512); iov[3] = S;
	expect_status(&p, iov, 2, 2, st, VIRTIO_BLK_S_IOERR, 1);

	/* Too many segments for the device's iovecs (-ENOBUFS): used length 0. */
	iov[0] = H(VIRTIO_BLK_T_OUT, 0);
	for (int i = 1; i <= 140; i++)
		iov[i] = (struct iovec){ big + i * 512, 512 };
	iov[141] = S;
	*st = 0xee;
	assert_int_equal(raw_req(&p, iov, 141, 1), 0);
	assert_int_equal(*st, 0xee);

	check_disk(&p);

	/* Well-formed odd shapes: header split in two, status inside a larger iovec. */
	hdr_at(&p, 0, VIRTIO_BLK_T_IN, 0);
	iov[0] = (struct iovec){ p.raw, 7 };
	iov[1] = (struct iovec){ p.raw + 7, 9 };
	iov[2] = (struct iovec){ big, 513 };
	big[512] = 0xee;
	assert_int_equal(raw_req(&p, iov, 2, 1), 513);
	assert_int_equal(big[512], VIRTIO_BLK_S_OK);
	assert_int_equal(vqh_check(big, 512, 5, 0, 1), -1);
	/* Status is the last byte: a 4-byte trailing iovec on a flush gets it at [3] only. */
	iov[0] = H(VIRTIO_BLK_T_FLUSH, 0);
	memset(big, 0xcc, 4);
	iov[1] = (struct iovec){ big, 4 };
	assert_int_equal(raw_req(&p, iov, 1, 1), 1);
	assert_int_equal(big[3], VIRTIO_BLK_S_OK);
	assert_true(all_byte(big, 3, 0xcc));
	/* GET_ID into a short buffer: written length counts what was written. */
	iov[0] = H(VIRTIO_BLK_T_GET_ID, 0);
	iov[1] = (struct iovec){ big, 5 };
	iov[2] = S;
	expect_status(&p, iov, 1, 2, st, VIRTIO_BLK_S_OK, 6);
	assert_memory_equal(big, "vio\0\0", 5);
	/* A zero-length read at the very end is fine. */
	iov[0] = H(VIRTIO_BLK_T_IN, SECTORS);
	iov[1] = S;
	expect_status(&p, iov, 1, 1, st, VIRTIO_BLK_S_OK, 1);
#undef H
#undef S
#undef D
	assert_false(vio_virtq_is_broken(&p.qs[0].dev));
	pair_close(&p);
}

/* ---- a broken ring makes queue_poll fail ---- */

static void test_broken(void **state)
{
	const struct vqh_layout *l = *state;
	struct vio_blk_opts o = { .ram_size = DISK };
	struct pair p;

	assert_int_equal(pair_open(&p, l, &o, 1, 64, 0), 0);
	if (l->packed) {
		struct pvirtq_desc d = { .addr = 0x10, .len = 16, .id = 0 };

		vqh_packed_publish(&p.qs[0], &d, 1);
	} else {
		vqh_split_publish(&p.qs[0], 1000);
	}
	assert_int_equal(p.vdev.ops->queue_poll(p.vdev.dev, 0), -EIO);
	assert_int_equal(p.vdev.ops->queue_poll(p.vdev.dev, 0), -EIO);
	assert_true(vio_virtq_is_broken(&p.qs[0].dev));
	pair_close(&p);
}

/* ---- io_uring, queue depth 64, all in flight at once ---- */

struct deep {
	unsigned done, ok, reordered, last;
	bool seen[64];
};

struct deep_req {
	struct deep *d;
	unsigned idx;
};

static void deep_cb(void *opaque, int status, uint32_t len)
{
	struct deep_req *r = opaque;

	r->d->done++;
	if (status == VIRTIO_BLK_S_OK)
		r->d->ok++;
	if (r->idx < r->d->last)
		r->d->reordered++;
	r->d->last = r->idx;
}

static void deep_round(struct pair *p, bool write, struct deep_req *rq, struct iovec *iov)
{
	struct deep *d = rq[0].d;
	int fd = p->vdev.ops->queue_wait_fd(p->vdev.dev, 0);

	memset(d, 0, sizeof(*d));
	for (unsigned i = 0; i < 64; i++) {
		/* Sizes differ so completions can overtake each other. */
		struct vio_blk_client_req r = { .type = write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN,
						.sector = i * 32, .iov = &iov[i], .niov = 1 };

		rq[i] = (struct deep_req){ d, i };
		assert_int_equal(vio_blk_client_submit(p->cl, 0, &r, deep_cb, &rq[i]), 0);
	}
	assert_int_equal(vio_blk_client_submit(p->cl, 0, &(struct vio_blk_client_req){
						       .type = VIRTIO_BLK_T_FLUSH }, deep_cb,
					       &rq[0]),
			 -ENOSPC);
	assert_int_equal(vio_blk_client_inflight(p->cl, 0), 64);
	vio_blk_client_kick(p->cl, 0);
	/* Two bursts take all 64 without waiting for any completion: all are in flight at once. */
	assert_true(p->vdev.ops->queue_poll(p->vdev.dev, 0) >= 32);
	assert_true(p->vdev.ops->queue_poll(p->vdev.dev, 0) >= 32);
	assert_false(vio_virtq_device_has_avail(&p->qs[0].dev));
	for (int spin = 0; spin < 20000 && d->done < 64; spin++) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };

		uint64_t v;

		assert_true(p->vdev.ops->queue_poll(p->vdev.dev, 0) >= 0);
		assert_true(vio_blk_client_poll(p->cl, 0) >= 0);
		/*
		 * Drain the completion eventfd once it fires: left readable, it
		 * would end every later wait at once and the bound would last a
		 * fraction of a second instead of 20 s (a busy disk missed it).
		 */
		if (d->done < 64 && poll(&pfd, 1, 1) > 0 && read(fd, &v, sizeof(v)) < 0)
			assert_int_equal(errno, EAGAIN);
	}
	assert_int_equal(d->done, 64);
	assert_int_equal(d->ok, 64);
}

/* 64 requests of 4-16 KiB in flight at once, four rounds of writes and read-backs. */
static void deep_rounds(struct pair *p, const char *what)
{
	struct deep d;
	struct deep_req rq[64];
	struct iovec iov[64];
	unsigned reordered = 0;

	for (unsigned i = 0; i < 64; i++) {
		size_t len = (size_t)((i % 4) + 1) * 4096;

		iov[i] = (struct iovec){ p->buf + i * 16384, len };
		rq[i].d = &d;
	}
	for (int round = 0; round < 4; round++) {
		for (unsigned i = 0; i < 64; i++)
			vqh_fill(iov[i].iov_base, iov[i].iov_len, i + round, 0, 13);
		deep_round(p, true, rq, iov);
		reordered += d.reordered;
		for (unsigned i = 0; i < 64; i++)
			memset(iov[i].iov_base, 0, iov[i].iov_len);
		deep_round(p, false, rq, iov);
		reordered += d.reordered;
		for (unsigned i = 0; i < 64; i++)
			assert_int_equal(vqh_check(iov[i].iov_base, iov[i].iov_len, i + round, 0,
						   13), -1);
	}
	print_message("%s depth 64: %u completions out of submission order\n", what, reordered);
}

static void test_uring_deep(void **state)
{
	struct vio_blk_opts o = { 0 };
	char path[64];
	struct pair p;
	int fd, rc;

	fd = temp_file(path, sizeof(path), DISK);
	assert_true(fd >= 0);
	close(fd);
	o.file = path;
	o.direct = true;
	rc = pair_open(&p, *state, &o, 1, 64, 4);
	if (rc == -EINVAL) { /* no O_DIRECT here: buffered still runs 64 deep */
		o.direct = false;
		rc = pair_open(&p, *state, &o, 1, 64, 4);
	}
	if (rc == -ENOTSUP) {
		print_message("SKIP: libvio built without io_uring\n");
		unlink(path);
		skip();
	}
	assert_int_equal(rc, 0);
	snprintf(p.path, sizeof(p.path), "%s", path);
	deep_rounds(&p, o.direct ? "io_uring O_DIRECT" : "io_uring buffered");
	pair_close(&p);
}

/* The RAM engine copies a burst at commit: 64 deep is two bursts and a partial reap. */
static void test_ram_deep(void **state)
{
	struct vio_blk_opts o = { .ram_size = DISK };
	struct pair p;

	assert_int_equal(pair_open(&p, *state, &o, 1, 64, 4), 0);
	deep_rounds(&p, "ram");
	pair_close(&p);
}

/*
 * A tmpfs file is read and written inline (no io_uring worker): 64 deep,
 * then a read past a file that shrank under the device fails with an I/O
 * error instead of returning a short buffer as if it were whole.
 */
static void test_tmpfs_deep(void **state)
{
	struct vio_blk_opts o = { 0 };
	char path[64];
	struct pair p;
	int fd, rc;

	fd = temp_file_in("/dev/shm", path, sizeof(path), DISK);
	assert_true(fd >= 0);
	o.file = path;
	rc = pair_open(&p, *state, &o, 1, 64, 4);
	if (rc == -ENOTSUP) {
		print_message("SKIP: libvio built without io_uring\n");
		close(fd);
		unlink(path);
		skip();
	}
	assert_int_equal(rc, 0);
	snprintf(p.path, sizeof(p.path), "%s", path);
	deep_rounds(&p, "tmpfs");
	assert_int_equal(ftruncate(fd, DISK / 2), 0);
	assert_int_equal(rw(&p, 0, false, DISK / 512 - 8, p.buf, 4096, NULL), VIRTIO_BLK_S_IOERR);
	assert_int_equal(rw(&p, 0, false, 0, p.buf, 4096, NULL), VIRTIO_BLK_S_OK);
	close(fd);
	pair_close(&p);
}

/*
 * Image locks: a second exclusive open of a file is refused with -EBUSY,
 * shared opens coexist, a shared open does not get past an exclusive one,
 * disjoint windows do not conflict, and closing releases the lock.
 */
static void test_image_lock(void **state)
{
	struct vio_blk_opts o = { 0 }, w = { 0 };
	struct vio_blk *a, *b, *c;
	char path[64];
	int fd = temp_file(path, sizeof(path), DISK);
	int rc;

	assert_true(fd >= 0);
	o.file = path;
	rc = vio_blk_new(&o, &a);
	if (rc == -ENOTSUP) {
		close(fd);
		unlink(path);
		skip();
	}
	assert_int_equal(rc, 0);
	assert_int_equal(vio_blk_new(&o, &b), -EBUSY);
	o.shared = true;
	assert_int_equal(vio_blk_new(&o, &b), -EBUSY);
	vio_blk_free(a);
	assert_int_equal(vio_blk_new(&o, &a), 0);
	assert_int_equal(vio_blk_new(&o, &b), 0);
	o.shared = false;
	assert_int_equal(vio_blk_new(&o, &c), -EBUSY);
	vio_blk_free(a);
	vio_blk_free(b);
	/* two windows of one image: each locked alone, neither in the other's way */
	o.length = DISK / 2;
	w = o;
	w.offset = DISK / 2;
	assert_int_equal(vio_blk_new(&o, &a), 0);
	assert_int_equal(vio_blk_new(&w, &b), 0);
	vio_blk_free(a);
	vio_blk_free(b);
	(void)state;
	close(fd);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		VQH_BOTH(test_ram_all),
		VQH_BOTH(test_uring_all),
		VQH_BOTH(test_uring_tmpfs),
		VQH_BOTH(test_uring_direct),
		VQH_BOTH(test_config),
		VQH_BOTH(test_multiqueue),
		VQH_BOTH(test_readonly),
		VQH_BOTH(test_unnegotiated_dwz),
		VQH_BOTH(test_misshaped),
		VQH_BOTH(test_broken),
		VQH_BOTH(test_uring_deep),
		VQH_BOTH(test_ram_deep),
		VQH_BOTH(test_tmpfs_deep),
		cmocka_unit_test(test_image_lock),
	};

	alarm(120);
	return cmocka_run_group_tests_name("blk", tests, NULL, NULL);
}
