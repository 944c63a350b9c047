/* SPDX-License-Identifier: MIT */
/*
 * vio's frontend and blk client against vio's backend and blk device, in one
 * process over a real unix socket, wired the way viod wires them: a thread
 * dispatches the backend, and every queue it starts goes to the data-plane
 * poller (src/daemon/poller.c) and comes back through its stop hook. Every
 * request type with its data checked, multi-queue I/O from four threads,
 * misshaped requests and a broken ring, disconnects clean and abrupt, and
 * the config space. Every wait is bounded: a bug fails, it does not hang.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_util.h"
#include "daemon/poller.h"
#include "vhost_user/msg.h"
#include "vhost_user/socket.h"
#include "core/mem_internal.h"
#include "core/virtq_internal.h"
#include "vio/vio.h"

#define DISK (16u << 20)
#define SECTORS ((uint64_t)DISK / 512)
#define FE_MEM (16u << 20)
#define BUF (1u << 20)
#define TMO 5000   /* ms, any single request */
#define WAIT_MS 3000 /* ms, the backend noticing a connection change */
#define QSIZE 256
#define SERIAL "vhu-blk-serial-7"
#define RAW_COOKIE ((void *)0x5a)

/* The features a guest driver would ask for; each run adds its layout bits. */
#define BLK_WANTED                                                                              \
	(VIO_BIT(VIRTIO_BLK_F_SIZE_MAX) | VIO_BIT(VIRTIO_BLK_F_SEG_MAX) |                       \
	 VIO_BIT(VIRTIO_BLK_F_BLK_SIZE) | VIO_BIT(VIRTIO_BLK_F_FLUSH) |                         \
	 VIO_BIT(VIRTIO_BLK_F_TOPOLOGY) | VIO_BIT(VIRTIO_BLK_F_MQ) | VIO_BIT(VIRTIO_BLK_F_RO) |  \
	 VIO_BIT(VIRTIO_BLK_F_DISCARD) | VIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES))

/* One run's parameters, handed to a test as its prestate. */
struct variant {
	uint64_t features;     /* layout and notification bits on top of BLK_WANTED */
	uint16_t indirect_max; /* frontend indirect tables (needs INDIRECT_DESC) */
	bool file;             /* io_uring on a temp file instead of RAM */
	bool direct;           /* and O_DIRECT: requests really wait for the disk */
};

#define EV VIO_BIT(VIRTIO_F_EVENT_IDX)
#define IND VIO_BIT(VIRTIO_F_INDIRECT_DESC)
#define PACKED VIO_BIT(VIRTIO_F_RING_PACKED)
static const struct variant v_split = { .features = EV };
static const struct variant v_split_plain = { .features = 0 };
static const struct variant v_packed = { .features = PACKED | EV | IND, .indirect_max = 128 };
static const struct variant v_packed_plain = { .features = PACKED };
static const struct variant v_split_file = { .features = EV | IND, .indirect_max = 128,
					     .file = true };
static const struct variant v_split_direct = { .features = EV, .file = true, .direct = true };
/* Behind an IOMMU: every address through the backend's IOTLB, which the frontend fills. */
#define AP VIO_BIT(VIRTIO_F_ACCESS_PLATFORM)
static const struct variant v_split_iommu = { .features = EV | IND | AP, .indirect_max = 128 };
static const struct variant v_packed_iommu = { .features = PACKED | EV | IND | AP,
					       .indirect_max = 128 };

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ------------------------------------------------- data patterns on disk */

/* The byte seed `seed` puts at disk offset off: depends on the sector and the offset in it. */
static uint8_t pat(unsigned seed, uint64_t off)
{
	uint64_t x = ((off >> 9) + 1) * 0x9e3779b97f4a7c15ull ^ (seed + 1) * 0xff51afd7ed558ccdull;

	return (uint8_t)((x >> 31) + (off & 511) * 13);
}

static void fill(uint8_t *b, size_t len, unsigned seed, uint64_t off)
{
	for (size_t i = 0; i < len; i++)
		b[i] = pat(seed, off + i);
}

/* Index of the first byte not as seed wrote it, or -1. */
static long check(const uint8_t *b, size_t len, unsigned seed, uint64_t off)
{
	for (size_t i = 0; i < len; i++)
		if (b[i] != pat(seed, off + i))
			return (long)i;
	return -1;
}

/* Cut len bytes of buf into nseg (<= len) segments of uneven, nonzero sizes. */
static void split_segs(struct iovec *iov, uint8_t *buf, size_t len, unsigned nseg, unsigned seed)
{
	size_t base = len / nseg, off = 0;

	for (unsigned i = 0; i < nseg; i++)
		iov[i].iov_len = base;
	iov[nseg - 1].iov_len += len - base * nseg;
	for (unsigned i = 0; i + 1 < nseg; i += 2) {
		size_t d = (seed * 7u + i * 13u) % base; /* < base: both stay >= 1 */

		iov[i].iov_len -= d;
		iov[i + 1].iov_len += d;
	}
	for (unsigned i = 0; i < nseg; i++) {
		iov[i].iov_base = buf + off;
		off += iov[i].iov_len;
	}
}

/* --------------------------------------------- the backend side: "viod" */

struct snap {
	bool connected;
	unsigned running;
	uint8_t status;
};

struct srv {
	struct vio_blk *blk;
	struct vio_vdev vdev;
	struct vio_poller *poller;
	struct vio_vhu_backend *b;
	pthread_t loop;
	atomic_bool stop;
	atomic_int loop_err;
	atomic_int conns;     /* connection hook: up minus down */
	atomic_int connects;  /* connection hook: ups */
	atomic_int polled;    /* queues the poller holds, by the hooks' count */
	atomic_int hook_errs; /* poller add/remove failures */
	atomic_int faults;
	/* a snapshot of backend state, taken on the loop thread (the only one allowed) */
	pthread_mutex_t lock;
	pthread_cond_t cv;
	bool want_snap;
	struct snap snap;
	char names[VIO_BLK_MAX_QUEUES][24];
	char dir[64], sock[96], file[96];
	int fds_idle, maps_idle;
};

/* The test's backend, for the teardown to free when the test failed half-way. */
static struct srv *cur_srv;

static int hook_start(void *opaque, unsigned q, struct vio_virtq *vq, int kick_fd)
{
	struct srv *s = opaque;
	struct vio_poll_queue pq = {
		.vdev = s->vdev, .q = q, .vq = vq, .kick_fd = kick_fd, .name = s->names[q],
	};
	int r = vio_poller_add(s->poller, &pq);

	/* the backend's thread: count, never assert here */
	if (r)
		atomic_fetch_add(&s->hook_errs, 1);
	else
		atomic_fetch_add(&s->polled, 1);
	return r;
}

static void hook_stop(void *opaque, unsigned q)
{
	struct srv *s = opaque;

	if (vio_poller_remove(s->poller, s->vdev.dev, q))
		atomic_fetch_add(&s->hook_errs, 1);
	else
		atomic_fetch_sub(&s->polled, 1);
}

static void hook_connection(void *opaque, bool up)
{
	struct srv *s = opaque;

	atomic_fetch_add(&s->conns, up ? 1 : -1);
	if (up)
		atomic_fetch_add(&s->connects, 1);
}

static void hook_fault(void *opaque, unsigned q, enum vio_virtq_fault why)
{
	struct srv *s = opaque;

	atomic_fetch_add(&s->faults, 1);
}

static void *loop_main(void *arg)
{
	struct srv *s = arg;

	while (!atomic_load(&s->stop)) {
		if (vio_vhu_backend_run_once(s->b, 5) < 0) {
			atomic_store(&s->loop_err, 1);
			break;
		}
		pthread_mutex_lock(&s->lock);
		if (s->want_snap) {
			s->snap.connected = vio_vhu_backend_connected(s->b);
			s->snap.running = vio_vhu_backend_running_queues(s->b);
			s->snap.status = vio_vhu_backend_status(s->b);
			s->want_snap = false;
			pthread_cond_broadcast(&s->cv);
		}
		pthread_mutex_unlock(&s->lock);
	}
	return NULL;
}

static struct snap srv_snap(struct srv *s)
{
	struct timespec dl;
	struct snap out;
	bool taken;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 2;
	pthread_mutex_lock(&s->lock);
	s->want_snap = true;
	while (s->want_snap && pthread_cond_timedwait(&s->cv, &s->lock, &dl) == 0)
		;
	taken = !s->want_snap;
	s->want_snap = false;
	out = s->snap;
	pthread_mutex_unlock(&s->lock);
	assert_true(taken); /* else the loop thread is stuck or gone */
	return out;
}

/* Mappings of a front-end's guest memory (memfds named by vio's frontend and raw_midsetup). */
static int count_guest_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int n = 0;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		n += strstr(line, "memfd:vio-guest") || strstr(line, "memfd:raw-guest");
	fclose(f);
	return n;
}

/* Until the backend has seen `want` front-ends connected (0 or 1), bounded. */
static void wait_conns(struct srv *s, int want)
{
	uint64_t dl = now_ms() + WAIT_MS;

	while (atomic_load(&s->conns) != want && now_ms() < dl)
		usleep(2000);
	assert_int_equal(atomic_load(&s->conns), want);
}

/* After a front-end left: no queue running or polled, no fd left behind. */
static void assert_idle(struct srv *s)
{
	struct snap sn;

	wait_conns(s, 0);
	sn = srv_snap(s);
	assert_false(sn.connected);
	assert_int_equal(sn.running, 0);
	assert_int_equal(atomic_load(&s->polled), 0);
	assert_int_equal(atomic_load(&s->hook_errs), 0);
	assert_int_equal(count_fds(), s->fds_idle);
	assert_int_equal(count_guest_maps(), s->maps_idle);
}

/* NULL when the variant cannot run here (no io_uring, no O_DIRECT): the caller skips. */
static struct srv *srv_new(const struct vio_blk_opts *bo_in, const struct variant *v,
			   unsigned poll_threads)
{
	bool file = v->file;
	struct srv *s = calloc(1, sizeof(*s));
	struct vio_blk_opts bo = *bo_in;
	struct vio_vhu_backend_opts o = {
		.hooks = { .start_queue = hook_start, .stop_queue = hook_stop,
			   .connection = hook_connection, .queue_fault = hook_fault },
		.msg_timeout_ms = 1000,
	};
	int r;

	assert_non_null(s);
	snprintf(s->dir, sizeof(s->dir), "/tmp/vio-vhu-blk-XXXXXX");
	assert_non_null(mkdtemp(s->dir));
	snprintf(s->sock, sizeof(s->sock), "%s/blk.sock", s->dir);
	if (file) {
		int fd;

		snprintf(s->file, sizeof(s->file), "%s/disk.img", s->dir);
		fd = open(s->file, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
		assert_true(fd >= 0);
		assert_int_equal(ftruncate(fd, DISK), 0);
		close(fd);
		bo.file = s->file;
		bo.ram_size = 0;
		bo.direct = v->direct;
	}
	r = vio_blk_new(&bo, &s->blk);
	if (file && (r == -ENOTSUP || (r == -EINVAL && v->direct))) {
		print_message("SKIP: %s\n", r == -ENOTSUP ? "libvio built without io_uring"
							   : "no O_DIRECT in /tmp");
		unlink(s->file);
		rmdir(s->dir);
		free(s);
		return NULL;
	}
	assert_int_equal(r, 0);
	s->vdev = vio_blk_vdev(s->blk);
	for (unsigned q = 0; q < VIO_BLK_MAX_QUEUES; q++)
		snprintf(s->names[q], sizeof(s->names[q]), "test blk q%u", q);
	assert_int_equal(vio_poller_new(poll_threads, 50, NULL, 0, &s->poller), 0);
	o.socket_path = s->sock;
	o.vdev = s->vdev;
	o.access_platform = true; /* offered; only the IOMMU variants take it */
	o.hooks_opaque = s;
	assert_int_equal(vio_vhu_backend_new(&o, &s->b), 0);
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cv, NULL);
	assert_int_equal(pthread_create(&s->loop, NULL, loop_main, s), 0);
	s->fds_idle = count_fds();
	s->maps_idle = count_guest_maps(); /* 0 unless an earlier test failed half-way */
	cur_srv = s;
	return s;
}

/* Stop and free everything; 0, or -1 if something was left behind. No asserts. */
static int srv_destroy(struct srv *s)
{
	int bad = 0;

	atomic_store(&s->stop, true);
	pthread_join(s->loop, NULL);
	bad |= atomic_load(&s->loop_err);
	/* The test thread is the control thread now. */
	vio_vhu_backend_free(s->b);
	bad |= atomic_load(&s->polled) != 0;
	vio_poller_free(s->poller);
	vio_blk_free(s->blk);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cv);
	if (s->file[0])
		unlink(s->file);
	unlink(s->sock);
	bad |= rmdir(s->dir) != 0;
	free(s);
	cur_srv = NULL;
	return bad ? -1 : 0;
}

static void srv_free(struct srv *s)
{
	assert_int_equal(srv_destroy(s), 0);
}

/* --------------------------------------------- the frontend side: a driver */

struct fe {
	struct vio_vhu_frontend *f;
	struct vio_blk_client *cl;
	unsigned nq, ncl;
	uint8_t *wbuf, *rbuf; /* BUF bytes each, page-aligned, in shared memory */
	uint8_t *raw;         /* 64 KiB for hand-made requests */
	bool aligned;         /* O_DIRECT device: one segment per request */
};

static int fe_try_open(struct fe *fe, struct srv *s, const struct variant *v, unsigned nq,
		       unsigned ncl)
{
	struct vio_vhu_frontend_opts o = {
		.socket_path = s->sock,
		.mem_size = FE_MEM,
		.features = BLK_WANTED | v->features,
		.nqueues = nq,
		.queue_size = QSIZE,
		.indirect_max = v->indirect_max,
		.timeout_ms = 3000,
	};
	struct vio_drv_ctx ctx[VIO_BLK_MAX_QUEUES];
	size_t area;
	void *a;
	int r;

	memset(fe, 0, sizeof(*fe));
	r = vio_vhu_frontend_connect(&o, &fe->f);
	if (r)
		return r;
	fe->nq = nq;
	fe->ncl = ncl;
	fe->aligned = v->direct;
	for (unsigned q = 0; q < ncl; q++)
		ctx[q] = *vio_vhu_frontend_queue(fe->f, q);
	area = vio_blk_client_area_size(ctx, ncl);
	a = vio_vhu_frontend_alloc(fe->f, area, 64);
	fe->wbuf = vio_vhu_frontend_alloc(fe->f, BUF, 4096);
	fe->rbuf = vio_vhu_frontend_alloc(fe->f, BUF, 4096);
	fe->raw = vio_vhu_frontend_alloc(fe->f, 65536, 4096);
	assert_non_null(a);
	assert_non_null(fe->wbuf);
	assert_non_null(fe->rbuf);
	assert_non_null(fe->raw);
	assert_int_equal(vio_blk_client_new(ctx, ncl, a, area, &fe->cl), 0);
	return 0;
}

static void fe_open(struct fe *fe, struct srv *s, const struct variant *v, unsigned nq,
		    unsigned ncl)
{
	assert_int_equal(fe_try_open(fe, s, v, nq, ncl), 0);
	wait_conns(s, 1);
	assert_true(count_guest_maps() >= s->maps_idle + 2); /* ours and the backend's */
}

/* clean: stop every queue first (requests done); else just vanish. */
static void fe_close(struct fe *fe, bool clean)
{
	if (clean) {
		for (unsigned q = 0; q < fe->ncl; q++)
			assert_int_equal(vio_blk_client_inflight(fe->cl, q), 0);
		assert_int_equal(vio_vhu_frontend_disconnect(fe->f), 0);
	}
	vio_blk_client_free(fe->cl);
	vio_vhu_frontend_close(fe->f);
	memset(fe, 0, sizeof(*fe));
}

static int sreq(struct fe *fe, unsigned q, const struct vio_blk_client_req *r, uint32_t *len)
{
	uint32_t l = 0xdeadbeef;
	int st = vio_blk_client_sync(fe->cl, q, r, NULL, NULL, TMO, &l);

	if (len)
		*len = l;
	return st;
}

/* Read or write len bytes at sector through nseg uneven segments. */
static int rw(struct fe *fe, unsigned q, bool write, uint64_t sector, uint8_t *buf, size_t len,
	      unsigned nseg, uint32_t *ulen)
{
	struct iovec iov[VIO_BLK_CLIENT_MAX_IOV];
	struct vio_blk_client_req r = { .type = write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN,
					.sector = sector, .iov = iov, .niov = len ? nseg : 0 };

	if (fe->aligned)
		r.niov = nseg = len ? 1 : 0;
	if (len)
		split_segs(iov, buf, len, nseg, (unsigned)sector);
	return sreq(fe, q, &r, ulen);
}

static int dwz(struct fe *fe, unsigned q, uint32_t type, uint64_t sector, uint32_t n,
	       uint32_t flags)
{
	struct vio_blk_client_req r = { .type = type, .seg_sector = sector, .num_sectors = n,
					.flags = flags };
	uint32_t len = 0;
	int st = sreq(fe, q, &r, &len);

	if (st >= 0)
		assert_int_equal(len, 1);
	return st;
}

/* Write len bytes of seed's pattern at sector, in chunks the buffer holds. */
static void write_pat(struct fe *fe, unsigned q, uint64_t sector, size_t len, unsigned seed)
{
	for (size_t done = 0; done < len; done += BUF) {
		size_t n = len - done < BUF ? len - done : BUF;
		uint64_t off = sector * 512 + done;

		fill(fe->wbuf, n, seed, off);
		assert_int_equal(rw(fe, q, true, off / 512, fe->wbuf, n, 4, NULL), VIRTIO_BLK_S_OK);
	}
}

static void check_pat(struct fe *fe, unsigned q, uint64_t sector, size_t len, unsigned seed)
{
	for (size_t done = 0; done < len; done += BUF) {
		size_t n = len - done < BUF ? len - done : BUF;
		uint64_t off = sector * 512 + done;
		uint32_t ulen = 0;

		memset(fe->rbuf, 0xa5, n);
		assert_int_equal(rw(fe, q, false, off / 512, fe->rbuf, n, 3, &ulen),
				 VIRTIO_BLK_S_OK);
		assert_int_equal(ulen, n + 1);
		assert_int_equal(check(fe->rbuf, n, seed, off), -1);
	}
}

/* Wait for an interrupt on q, briefly; true if one came. */
static bool wait_call(const struct vio_drv_ctx *c, int ms)
{
	struct pollfd pfd = { .fd = c->call_fd, .events = POLLIN };
	uint64_t v;

	if (!vio_virtq_driver_enable_cb(c->vq))
		return true; /* used buffers already there */
	if (poll(&pfd, 1, ms) <= 0)
		return false;
	return read(c->call_fd, &v, sizeof(v)) == sizeof(v);
}

/* ---------------------------------------------------- hand-made requests */

/* Set the length of the descriptor that points at p (not yet published) to len. */
static void patch_desc_len(const struct vio_drv_ctx *c, const void *p, uint32_t len)
{
	struct vio_virtq *vq = c->vq;
	uint64_t gpa;
	unsigned hits = 0;

	assert_int_equal(vio_mem_host_to_gpa(c->mem, p, 1, &gpa), 0);
	for (unsigned i = 0; i < vq->size; i++) {
		if (vq->packed && vq->l.packed.desc[i].addr == gpa) {
			vq->l.packed.desc[i].len = len;
			hits++;
		} else if (!vq->packed && vq->l.split.desc[i].addr == gpa) {
			vq->l.split.desc[i].len = len;
			hits++;
		}
	}
	assert_int_equal(hits, 1);
}

/*
 * Post iov[0, nout) readable and the rest writable on q (a queue the blk
 * client does not own), optionally shrinking the descriptor of zero_len's
 * buffer to 0 bytes; wait for it; return the used length.
 */
static uint32_t raw_req(struct fe *fe, unsigned q, const struct iovec *iov, unsigned nout,
			unsigned nin, const void *zero_len)
{
	const struct vio_drv_ctx *c = vio_vhu_frontend_queue(fe->f, q);
	uint64_t dl = now_ms() + TMO;
	void *cookie = NULL;
	uint32_t len = 0;
	int got = 0;

	assert_true(q >= fe->ncl);
	assert_int_equal(vio_virtq_add(c->vq, c->mem, iov, nout, nin, RAW_COOKIE), 0);
	if (zero_len)
		patch_desc_len(c, zero_len, 0);
	if (vio_virtq_kick_prepare(c->vq))
		c->kick(c->kick_opaque);
	while (now_ms() < dl) {
		got = vio_virtq_get_used_burst(c->vq, &cookie, &len, 1);
		if (got)
			break;
		wait_call(c, 10);
	}
	assert_int_equal(got, 1);
	assert_ptr_equal(cookie, RAW_COOKIE);
	return len;
}

/* -------------------------------------------- 1. every request type */

static const size_t seg_cases[][2] = {
	/* segments, bytes */
	{ 1, 512 },          { 1, 65536 },       { 2, 1024 },  { 3, 4608 },
	{ 7, 7 * 4096 + 512 }, { 31, 31 * 1024 }, { 64, 256 << 10 },
	{ VIO_BLK_SEG_MAX, VIO_BLK_SEG_MAX * 512 }, { VIO_BLK_SEG_MAX, VIO_BLK_SEG_MAX * 4096 },
	{ VIO_BLK_SEG_MAX, BUF },
};
#define NCASES (sizeof(seg_cases) / sizeof(seg_cases[0]))
#define CASE_SECTOR(i) ((uint64_t)(i) * 2048) /* 1 MiB apart */
#define ZONE_SECTOR 24576                     /* 12 MiB: write-zeroes and discard */

static void test_all_types(void **state)
{
	const struct variant *v = *state;
	struct vio_blk_opts bo = { .ram_size = DISK, .serial = SERIAL, .queues = 1 };
	struct srv *s = srv_new(&bo, v, 1);
	struct vio_blk_client_req req;
	struct iovec iov[2];
	struct fe fe;
	uint32_t len;
	uint8_t *r;

	if (!s)
		skip();
	fe_open(&fe, s, v, 1, 1);
	assert_int_equal(vio_vhu_frontend_features(fe.f) & v->features, v->features);
	r = fe.rbuf;

	/* OUT then IN, from 1 to SEG_MAX uneven segments, read back cut differently. */
	for (unsigned i = 0; i < NCASES; i++) {
		unsigned nseg = (unsigned)seg_cases[i][0];
		size_t bytes = seg_cases[i][1];
		unsigned rseg = nseg == 1 ? 2 : nseg - 1;

		fill(fe.wbuf, bytes, 100 + i, CASE_SECTOR(i) * 512);
		len = 0;
		assert_int_equal(rw(&fe, 0, true, CASE_SECTOR(i), fe.wbuf, bytes, nseg, &len),
				 VIRTIO_BLK_S_OK);
		assert_int_equal(len, 1);
		memset(r, 0xa5, BUF);
		assert_int_equal(rw(&fe, 0, false, CASE_SECTOR(i), r, bytes, rseg, &len),
				 VIRTIO_BLK_S_OK);
		assert_int_equal(len, bytes + 1);
		assert_memory_equal(r, fe.wbuf, bytes);
		assert_true(all_byte(r + bytes, BUF - bytes, 0xa5)); /* nothing past the request */
		memset(r, 0xa5, bytes);
		assert_int_equal(rw(&fe, 0, false, CASE_SECTOR(i), r, bytes, 1, &len),
				 VIRTIO_BLK_S_OK);
		assert_int_equal(check(r, bytes, 100 + i, CASE_SECTOR(i) * 512), -1);
	}
	/* Later writes did not disturb earlier ones. */
	for (unsigned i = 0; i < NCASES; i++)
		check_pat(&fe, 0, CASE_SECTOR(i), seg_cases[i][1], 100 + i);

	/* The last sector, and a zero-length read at the very end. */
	fill(fe.wbuf, 512, 7, (SECTORS - 1) * 512);
	assert_int_equal(rw(&fe, 0, true, SECTORS - 1, fe.wbuf, 512, 1, NULL), VIRTIO_BLK_S_OK);
	check_pat(&fe, 0, SECTORS - 1, 512, 7);
	assert_int_equal(rw(&fe, 0, false, SECTORS, r, 0, 0, &len), VIRTIO_BLK_S_OK);
	assert_int_equal(len, 1);

	/* FLUSH */
	req = (struct vio_blk_client_req){ .type = VIRTIO_BLK_T_FLUSH };
	assert_int_equal(sreq(&fe, 0, &req, &len), VIRTIO_BLK_S_OK);
	assert_int_equal(len, 1);

	/* GET_ID: the serial, NUL-padded to 20 bytes; a short buffer gets a prefix. */
	memset(r, 0xa5, 64);
	iov[0] = (struct iovec){ r, VIRTIO_BLK_ID_BYTES };
	req = (struct vio_blk_client_req){ .type = VIRTIO_BLK_T_GET_ID, .iov = iov, .niov = 1 };
	assert_int_equal(sreq(&fe, 0, &req, &len), VIRTIO_BLK_S_OK);
	assert_int_equal(len, VIRTIO_BLK_ID_BYTES + 1);
	assert_memory_equal(r, SERIAL "\0\0\0\0", VIRTIO_BLK_ID_BYTES);
	assert_true(all_byte(r + VIRTIO_BLK_ID_BYTES, 64 - VIRTIO_BLK_ID_BYTES, 0xa5));
	memset(r, 0xa5, 64);
	iov[0] = (struct iovec){ r, 64 }; /* room for more: still 20 bytes */
	assert_int_equal(sreq(&fe, 0, &req, &len), VIRTIO_BLK_S_OK);
	assert_int_equal(len, VIRTIO_BLK_ID_BYTES + 1);
	assert_memory_equal(r, SERIAL "\0\0\0\0", VIRTIO_BLK_ID_BYTES);
	assert_true(all_byte(r + VIRTIO_BLK_ID_BYTES, 64 - VIRTIO_BLK_ID_BYTES - 1, 0xa5));
	memset(r, 0xa5, 64);
	iov[0] = (struct iovec){ r, 6 };
	assert_int_equal(sreq(&fe, 0, &req, &len), VIRTIO_BLK_S_OK);
	assert_int_equal(len, 7);
	assert_memory_equal(r, SERIAL, 6);
	assert_int_equal(r[6], 0xa5);

	/* WRITE_ZEROES, unaligned and page-sized, with and without UNMAP: zeroes, neighbours kept. */
	write_pat(&fe, 0, ZONE_SECTOR, 256 * 512, 9);
	assert_int_equal(dwz(&fe, 0, VIRTIO_BLK_T_WRITE_ZEROES, ZONE_SECTOR + 3, 13, 0),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(dwz(&fe, 0, VIRTIO_BLK_T_WRITE_ZEROES, ZONE_SECTOR + 64, 64,
			     VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP), VIRTIO_BLK_S_OK);
	assert_int_equal(dwz(&fe, 0, VIRTIO_BLK_T_WRITE_ZEROES, ZONE_SECTOR + 133, 5,
			     VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP), VIRTIO_BLK_S_OK);
	/* whole pages with a partial page on each side */
	assert_int_equal(dwz(&fe, 0, VIRTIO_BLK_T_WRITE_ZEROES, ZONE_SECTOR + 150, 30,
			     VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP), VIRTIO_BLK_S_OK);
	memset(r, 0xa5, 256 * 512);
	assert_int_equal(rw(&fe, 0, false, ZONE_SECTOR, r, 256 * 512, 5, NULL), VIRTIO_BLK_S_OK);
	for (unsigned sec = 0; sec < 256; sec++) {
		bool zero = (sec >= 3 && sec < 16) || (sec >= 64 && sec < 128) ||
			    (sec >= 133 && sec < 138) || (sec >= 150 && sec < 180);

		if (zero)
			assert_true(all_byte(r + sec * 512, 512, 0));
		else
			assert_int_equal(check(r + sec * 512, 512, 9, (ZONE_SECTOR + sec) * 512),
					 -1);
	}

	/*
	 * DISCARD: the device promises only success (the data read afterwards is
	 * unspecified, and RAM keeps unaligned edges); the sectors around it must
	 * be untouched.
	 */
	write_pat(&fe, 0, ZONE_SECTOR, 256 * 512, 11);
	assert_int_equal(dwz(&fe, 0, VIRTIO_BLK_T_DISCARD, ZONE_SECTOR + 8, 16, 0),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(dwz(&fe, 0, VIRTIO_BLK_T_DISCARD, ZONE_SECTOR + 101, 3, 0),
			 VIRTIO_BLK_S_OK);
	memset(r, 0xa5, 256 * 512);
	assert_int_equal(rw(&fe, 0, false, ZONE_SECTOR, r, 256 * 512, 2, NULL), VIRTIO_BLK_S_OK);
	for (unsigned sec = 0; sec < 256; sec++)
		if (!((sec >= 8 && sec < 24) || (sec >= 101 && sec < 104)))
			assert_int_equal(check(r + sec * 512, 512, 11, (ZONE_SECTOR + sec) * 512),
					 -1);

	/* Types the device does not serve. */
	req = (struct vio_blk_client_req){ .type = 99 };
	assert_int_equal(sreq(&fe, 0, &req, &len), VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(len, 1);
	req.type = VIRTIO_BLK_T_GET_LIFETIME;
	assert_int_equal(sreq(&fe, 0, &req, &len), VIRTIO_BLK_S_UNSUPP);
	req.type = VIRTIO_BLK_T_SECURE_ERASE;
	assert_int_equal(sreq(&fe, 0, &req, &len), VIRTIO_BLK_S_UNSUPP);
	req.type = 0x80000000u;
	assert_int_equal(sreq(&fe, 0, &req, &len), VIRTIO_BLK_S_UNSUPP);

	/* The store itself holds what was written through the socket. */
	if (v->file) {
		int fd = open(s->file, O_RDONLY | O_CLOEXEC);
		uint8_t sec[512];

		assert_true(fd >= 0);
		for (unsigned i = 0; i < NCASES; i++) {
			assert_int_equal(pread(fd, sec, 512, (off_t)CASE_SECTOR(i) * 512), 512);
			assert_int_equal(check(sec, 512, 100 + i, CASE_SECTOR(i) * 512), -1);
		}
		close(fd);
	}
	assert_int_equal(srv_snap(s).status & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
	if (v->features & AP) {
		struct vio_vhu_iotlb_stats st;

		/* One identity update served everything: no miss, nothing refused. */
		vio_vhu_backend_iotlb_stats(s->b, &st);
		assert_true(st.enabled);
		assert_true(st.updates >= 1);
		assert_int_equal(st.misses, 0);
		assert_int_equal(st.refused, 0);
	}
	fe_close(&fe, true);
	assert_idle(s);
	assert_int_equal(atomic_load(&s->faults), 0);
	srv_free(s);
}

/* -------------------------------------------- 2. multi-queue */

#define MQ_NQ 4
#define MQ_DEPTH 32
#define MQ_SLOT (16u << 10)
#define MQ_REGION (1024ull * 1024) /* bytes per queue */
#define MQ_ROUNDS 3

struct mq_worker;

struct mq_slot {
	struct mq_worker *w;
	uint8_t *buf;
	uint64_t sector;
	uint32_t len;
	bool busy;
};

struct mq_worker {
	struct fe *fe;
	unsigned q;
	pthread_t t;
	uint64_t base; /* first sector of the region this queue owns */
	unsigned seed;
	bool writing;
	struct mq_slot slots[MQ_DEPTH];
	unsigned inflight, max_inflight, completed;
	char err[200];
};

static void mq_fail(struct mq_worker *w, const char *what, uint64_t sector, long v)
{
	if (!w->err[0])
		snprintf(w->err, sizeof(w->err), "queue %u: %s (sector %llu, %ld)", w->q, what,
			 (unsigned long long)sector, v);
}

static void mq_cb(void *opaque, int status, uint32_t len)
{
	struct mq_slot *sl = opaque;
	struct mq_worker *w = sl->w;
	long bad;

	sl->busy = false;
	w->inflight--;
	w->completed++;
	if (status != VIRTIO_BLK_S_OK)
		mq_fail(w, "status", sl->sector, status);
	else if (len != (w->writing ? 1 : sl->len + 1))
		mq_fail(w, "used length", sl->sector, len);
	else if (!w->writing && (bad = check(sl->buf, sl->len, w->seed, sl->sector * 512)) >= 0)
		mq_fail(w, "data read back differs at byte", sl->sector, bad);
}

/* Cover the region with requests of 512 B..16 KiB, MQ_DEPTH in flight. */
static void mq_phase(struct mq_worker *w, bool writing, uint64_t deadline)
{
	const struct vio_drv_ctx *c = vio_vhu_frontend_queue(w->fe->f, w->q);
	uint64_t cur = w->base, end = w->base + MQ_REGION / 512;
	unsigned i = 0;

	w->writing = writing;
	while ((cur < end || w->inflight) && !w->err[0]) {
		bool posted = false;
		int n;

		while (cur < end && w->inflight < MQ_DEPTH) {
			struct mq_slot *sl = NULL;
			struct iovec iov[4];
			uint64_t nsec = (i * 7u + w->q * 3u + w->seed) % 32 + 1;
			unsigned nseg = i % 4 + 1;
			struct vio_blk_client_req r;
			int rc;

			for (unsigned k = 0; k < MQ_DEPTH && !sl; k++)
				if (!w->slots[k].busy)
					sl = &w->slots[k];
			if (nsec > end - cur)
				nsec = end - cur;
			sl->sector = cur;
			sl->len = (uint32_t)nsec * 512;
			if (writing)
				fill(sl->buf, sl->len, w->seed, cur * 512);
			else
				memset(sl->buf, 0xa5, sl->len);
			split_segs(iov, sl->buf, sl->len, nseg, i);
			r = (struct vio_blk_client_req){
				.type = writing ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN, .sector = cur,
				.iov = iov, .niov = nseg,
			};
			rc = vio_blk_client_submit(w->fe->cl, w->q, &r, mq_cb, sl);
			if (rc) {
				mq_fail(w, "submit", cur, rc);
				return;
			}
			sl->busy = true;
			w->inflight++;
			if (w->inflight > w->max_inflight)
				w->max_inflight = w->inflight;
			cur += nsec;
			i++;
			posted = true;
		}
		if (posted)
			vio_blk_client_kick(w->fe->cl, w->q);
		n = vio_blk_client_poll(w->fe->cl, w->q);
		if (n < 0) {
			mq_fail(w, "poll", cur, n);
			return;
		}
		if (n == 0 && wait_call(c, 5))
			vio_virtq_driver_disable_cb(c->vq);
		if (now_ms() > deadline) {
			mq_fail(w, "timed out with requests in flight", cur, w->inflight);
			return;
		}
	}
}

static void *mq_main(void *arg)
{
	struct mq_worker *w = arg;
	uint64_t deadline = now_ms() + 15000;

	for (unsigned round = 0; round < MQ_ROUNDS && !w->err[0]; round++) {
		w->seed = 1000 + round * 16 + w->q;
		mq_phase(w, true, deadline);
		if (!w->err[0])
			mq_phase(w, false, deadline);
	}
	return NULL;
}

static void test_multiqueue(void **state)
{
	const struct variant *v = *state;
	struct vio_blk_opts bo = { .ram_size = DISK, .queues = MQ_NQ };
	struct srv *s = srv_new(&bo, v, 2);
	struct mq_worker w[MQ_NQ];
	struct virtio_blk_config cfg;
	unsigned total = 0;
	struct fe fe;

	if (!s)
		skip();

	fe_open(&fe, s, v, MQ_NQ, MQ_NQ);
	assert_true(vio_vhu_frontend_features(fe.f) & VIO_BIT(VIRTIO_BLK_F_MQ));
	assert_true(vio_vhu_frontend_protocol_features(fe.f) & VIO_BIT(VHOST_USER_PROTOCOL_F_MQ));
	assert_int_equal(vio_vhu_frontend_get_config(fe.f, 0, &cfg, VIO_BLK_CONFIG_LEN), 0);
	assert_int_equal(cfg.num_queues, MQ_NQ);
	assert_int_equal(srv_snap(s).running, MQ_NQ);
	assert_int_equal(atomic_load(&s->polled), MQ_NQ);

	memset(w, 0, sizeof(w));
	for (unsigned q = 0; q < MQ_NQ; q++) {
		w[q].fe = &fe;
		w[q].q = q;
		w[q].base = q * (MQ_REGION / 512) + 4096; /* disjoint, not at 0 */
		for (unsigned k = 0; k < MQ_DEPTH; k++) {
			w[q].slots[k].w = &w[q];
			w[q].slots[k].buf = vio_vhu_frontend_alloc(fe.f, MQ_SLOT, 512);
			assert_non_null(w[q].slots[k].buf);
		}
	}
	for (unsigned q = 0; q < MQ_NQ; q++)
		assert_int_equal(pthread_create(&w[q].t, NULL, mq_main, &w[q]), 0);
	for (unsigned q = 0; q < MQ_NQ; q++)
		pthread_join(w[q].t, NULL);
	for (unsigned q = 0; q < MQ_NQ; q++) {
		if (w[q].err[0])
			fail_msg("%s", w[q].err);
		assert_int_equal(w[q].inflight, 0);
		assert_int_equal(w[q].max_inflight, MQ_DEPTH);
		assert_int_equal(vio_blk_client_inflight(fe.cl, q), 0);
		total += w[q].completed;
	}
	/* Each region read through another queue than the one that wrote it. */
	for (unsigned q = 0; q < MQ_NQ; q++)
		check_pat(&fe, (q + 1) % MQ_NQ, w[q].base, MQ_REGION, w[q].seed);
	print_message("%u requests on %u queues, %u deep\n", total, MQ_NQ, MQ_DEPTH);
	assert_int_equal(srv_snap(s).status & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
	fe_close(&fe, true);
	assert_idle(s);
	srv_free(s);
}

/* -------------------------------------------- 3. misshaped requests */

static void expect_served(struct srv *s, struct fe *fe, unsigned nq)
{
	const struct snap sn = srv_snap(s);
	uint8_t st = 0;

	assert_true(sn.connected);
	assert_int_equal(sn.running, nq);
	assert_int_equal(sn.status & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
	assert_int_equal(vio_vhu_frontend_get_status(fe->f, &st), 0);
	assert_int_equal(st & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
	assert_int_equal(atomic_load(&s->faults), 0);
}

#define TAIL_SECTOR (SECTORS - 64)

static void test_misshaped(void **state)
{
	const struct variant *v = *state;
	struct vio_blk_opts bo = { .ram_size = DISK, .queues = 2 };
	struct srv *s = srv_new(&bo, v, 1);
	struct iovec iov[VIO_BLK_CLIENT_MAX_IOV];
	struct vio_blk_client_req req;
	struct virtio_blk_outhdr *h;
	uint8_t *st, *data;
	uint32_t len;
	struct fe fe;

	/* The client owns queue 0; queue 1 carries hand-made chains. */
	fe_open(&fe, s, v, 2, 1);
	write_pat(&fe, 0, 0, 64 * 512, 21);
	write_pat(&fe, 0, TAIL_SECTOR, 64 * 512, 22);

	/* Beyond capacity: starting at the end, straddling it, sector + length overflowing. */
	assert_int_equal(rw(&fe, 0, false, SECTORS, fe.rbuf, 512, 1, &len), VIRTIO_BLK_S_IOERR);
	assert_int_equal(len, 1);
	assert_int_equal(rw(&fe, 0, true, SECTORS, fe.wbuf, 512, 1, &len), VIRTIO_BLK_S_IOERR);
	assert_int_equal(rw(&fe, 0, true, SECTORS - 1, fe.wbuf, 1024, 2, NULL), VIRTIO_BLK_S_IOERR);
	assert_int_equal(rw(&fe, 0, false, SECTORS - 1, fe.rbuf, 1024, 1, NULL),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(rw(&fe, 0, true, UINT64_MAX - 1, fe.wbuf, 1024, 1, NULL),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(rw(&fe, 0, false, UINT64_MAX, fe.rbuf, 512, 1, NULL), VIRTIO_BLK_S_IOERR);
	/* sector << 9 wraps to a small offset: must not land on sector 0 */
	memset(fe.wbuf, 0x66, 512);
	assert_int_equal(rw(&fe, 0, true, 1ull << 55, fe.wbuf, 512, 1, NULL), VIRTIO_BLK_S_IOERR);
	assert_int_equal(rw(&fe, 0, true, (1ull << 55) + 1, fe.wbuf, 512, 1, NULL),
			 VIRTIO_BLK_S_IOERR);
	/* Data length not a multiple of 512. */
	assert_int_equal(rw(&fe, 0, true, 0, fe.wbuf, 700, 2, NULL), VIRTIO_BLK_S_IOERR);
	assert_int_equal(rw(&fe, 0, false, 0, fe.rbuf, 513, 1, NULL), VIRTIO_BLK_S_IOERR);

	/* Discard / write-zeroes segments beyond capacity or overflowing. */
	assert_int_equal(dwz(&fe, 0, VIRTIO_BLK_T_DISCARD, SECTORS - 4, 8, 0), VIRTIO_BLK_S_IOERR);
	assert_int_equal(dwz(&fe, 0, VIRTIO_BLK_T_DISCARD, SECTORS, 1, 0), VIRTIO_BLK_S_IOERR);
	assert_int_equal(dwz(&fe, 0, VIRTIO_BLK_T_DISCARD, UINT64_MAX, 2, 0), VIRTIO_BLK_S_IOERR);
	assert_int_equal(dwz(&fe, 0, VIRTIO_BLK_T_WRITE_ZEROES, SECTORS - 4, 8, 0),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(dwz(&fe, 0, VIRTIO_BLK_T_WRITE_ZEROES, UINT64_MAX - 3, 8,
			     VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP), VIRTIO_BLK_S_IOERR);
	assert_int_equal(dwz(&fe, 0, VIRTIO_BLK_T_WRITE_ZEROES, 0,
			     VIO_BLK_MAX_DWZ_SECTORS + 1, 0), VIRTIO_BLK_S_IOERR);
	assert_int_equal(dwz(&fe, 0, VIRTIO_BLK_T_WRITE_ZEROES, 0, 8, 4), VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(dwz(&fe, 0, VIRTIO_BLK_T_DISCARD, 0, 8,
			     VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP), VIRTIO_BLK_S_UNSUPP);

	/* One segment over SEG_MAX: the device cannot take it; used length 0, nothing written. */
	fill(fe.wbuf, (VIO_BLK_SEG_MAX + 1) * 512, 99, 0);
	assert_int_equal(rw(&fe, 0, true, 0, fe.wbuf, (VIO_BLK_SEG_MAX + 1) * 512,
			    VIO_BLK_SEG_MAX + 1, &len), -EIO);
	assert_int_equal(len, 0);
	expect_served(s, &fe, 2);

	/* Hand-made chains on queue 1. */
	h = (void *)fe.raw;
	st = fe.raw + 1024;
	data = fe.raw + 4096;

	/* A good one first: the header cut in two, status in its own descriptor. */
	*h = (struct virtio_blk_outhdr){ .type = VIRTIO_BLK_T_IN, .sector = 0 };
	iov[0] = (struct iovec){ h, 7 };
	iov[1] = (struct iovec){ (uint8_t *)h + 7, 9 };
	iov[2] = (struct iovec){ data, 1024 };
	iov[3] = (struct iovec){ st, 1 };
	*st = 0xee;
	assert_int_equal(raw_req(&fe, 1, iov, 2, 2, NULL), 1025);
	assert_int_equal(*st, VIRTIO_BLK_S_OK);
	assert_int_equal(check(data, 1024, 21, 0), -1);

	/* Header too short: IOERR in the status byte. */
	*h = (struct virtio_blk_outhdr){ .type = VIRTIO_BLK_T_OUT, .sector = 0 };
	iov[0] = (struct iovec){ h, 8 };
	iov[1] = (struct iovec){ st, 1 };
	*st = 0xee;
	assert_int_equal(raw_req(&fe, 1, iov, 1, 1, NULL), 1);
	assert_int_equal(*st, VIRTIO_BLK_S_IOERR);
	*h = (struct virtio_blk_outhdr){ .type = VIRTIO_BLK_T_FLUSH, .sector = 0 };
	for (size_t hl = 4; hl < sizeof(*h); hl += 4) {
		iov[0] = (struct iovec){ h, hl };
		*st = 0xee;
		assert_int_equal(raw_req(&fe, 1, iov, 1, 1, NULL), 1);
		assert_int_equal(*st, VIRTIO_BLK_S_IOERR);
	}
	/* No header at all (only writable buffers): IOERR in the last byte. */
	iov[0] = (struct iovec){ data, 512 };
	iov[1] = (struct iovec){ st, 1 };
	*st = 0xee;
	assert_int_equal(raw_req(&fe, 1, iov, 0, 2, NULL), 1);
	assert_int_equal(*st, VIRTIO_BLK_S_IOERR);

	/* No status buffer: nothing to answer in; used length 0, store untouched. */
	*h = (struct virtio_blk_outhdr){ .type = VIRTIO_BLK_T_OUT, .sector = 0 };
	memset(data, 0x77, 512);
	iov[0] = (struct iovec){ h, 16 };
	iov[1] = (struct iovec){ data, 512 };
	assert_int_equal(raw_req(&fe, 1, iov, 2, 0, NULL), 0);
	/* The status descriptor is 0 bytes long: the same. (Its own address, used once.) */
	iov[2] = (struct iovec){ st + 1, 1 };
	st[1] = 0xee;
	assert_int_equal(raw_req(&fe, 1, iov, 2, 1, st + 1), 0);
	assert_int_equal(st[1], 0xee);
	/* No room for a status byte after the data: the last data byte is the status. */
	*h = (struct virtio_blk_outhdr){ .type = VIRTIO_BLK_T_IN, .sector = 0 };
	memset(data, 0xcc, 512);
	iov[0] = (struct iovec){ h, 16 };
	iov[1] = (struct iovec){ data, 512 };
	assert_int_equal(raw_req(&fe, 1, iov, 1, 1, NULL), 1);
	assert_int_equal(data[511], VIRTIO_BLK_S_IOERR);
	assert_true(all_byte(data, 511, 0xcc));
	/* An OUT whose data sits in writable buffers. */
	*h = (struct virtio_blk_outhdr){ .type = VIRTIO_BLK_T_OUT, .sector = 0 };
	iov[0] = (struct iovec){ h, 16 };
	iov[1] = (struct iovec){ data, 512 };
	iov[2] = (struct iovec){ st, 1 };
	*st = 0xee;
	assert_int_equal(raw_req(&fe, 1, iov, 1, 2, NULL), 1);
	assert_int_equal(*st, VIRTIO_BLK_S_IOERR);

	/* After all that: both queues still served, no fault, every byte where it was. */
	expect_served(s, &fe, 2);
	check_pat(&fe, 0, 0, 64 * 512, 21);
	check_pat(&fe, 0, TAIL_SECTOR, 64 * 512, 22);
	*h = (struct virtio_blk_outhdr){ .type = VIRTIO_BLK_T_IN, .sector = TAIL_SECTOR };
	iov[0] = (struct iovec){ h, 16 };
	iov[1] = (struct iovec){ data, 4096 };
	iov[2] = (struct iovec){ st, 1 };
	assert_int_equal(raw_req(&fe, 1, iov, 1, 2, NULL), 4097);
	assert_int_equal(*st, VIRTIO_BLK_S_OK);
	assert_int_equal(check(data, 4096, 22, TAIL_SECTOR * 512), -1);
	req = (struct vio_blk_client_req){ .type = VIRTIO_BLK_T_FLUSH };
	assert_int_equal(sreq(&fe, 0, &req, NULL), VIRTIO_BLK_S_OK);

	fe_close(&fe, true);
	assert_idle(s);
	srv_free(s);
}

/* Read-only device: every write-like request fails, reads and flushes work. */
static void test_readonly(void **state)
{
	const struct variant *v = *state;
	struct vio_blk_opts bo = { .ram_size = DISK, .readonly = true };
	struct srv *s = srv_new(&bo, v, 1);
	struct vio_blk_client_req req;
	uint64_t f;
	uint32_t len;
	struct fe fe;

	fe_open(&fe, s, v, 1, 1);
	f = vio_vhu_frontend_features(fe.f);
	assert_true(f & VIO_BIT(VIRTIO_BLK_F_RO));
	assert_false(f & VIO_BIT(VIRTIO_BLK_F_DISCARD));
	assert_false(f & VIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES));
	memset(fe.wbuf, 0x77, 8192);
	assert_int_equal(rw(&fe, 0, true, 0, fe.wbuf, 8192, 3, &len), VIRTIO_BLK_S_IOERR);
	assert_int_equal(len, 1);
	/* Not negotiated on a read-only disk: unsupported, nothing touched. */
	assert_int_equal(dwz(&fe, 0, VIRTIO_BLK_T_DISCARD, 0, 8, 0), VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(dwz(&fe, 0, VIRTIO_BLK_T_WRITE_ZEROES, 0, 8, 0), VIRTIO_BLK_S_UNSUPP);
	memset(fe.rbuf, 0xa5, 8192);
	assert_int_equal(rw(&fe, 0, false, 0, fe.rbuf, 8192, 2, &len), VIRTIO_BLK_S_OK);
	assert_int_equal(len, 8193);
	assert_true(all_byte(fe.rbuf, 8192, 0));
	req = (struct vio_blk_client_req){ .type = VIRTIO_BLK_T_FLUSH };
	assert_int_equal(sreq(&fe, 0, &req, NULL), VIRTIO_BLK_S_OK);
	fe_close(&fe, true);
	assert_idle(s);
	srv_free(s);
}

/*
 * A ring broken by the driver stops that queue only (the poller thread it
 * shares with the other queue serves on); the front-end can still stop it
 * cleanly or just vanish, and the next front-end gets a fresh device.
 */
static void test_ring_fault(void **state)
{
	const struct variant *v = *state;
	struct vio_blk_opts bo = { .ram_size = DISK, .queues = 2 };
	struct srv *s = srv_new(&bo, v, 1);
	const struct vio_drv_ctx *c;
	struct virtq_avail *av;
	uint8_t st = 0;
	struct fe fe;

	for (int round = 0; round < 2; round++) {
		fe_open(&fe, s, v, 2, 1);
		if (round)
			check_pat(&fe, 0, 0, 8192, 31);
		write_pat(&fe, 0, 0, 8192, 31);
		c = vio_vhu_frontend_queue(fe.f, 1);
		av = c->vq->l.split.avail;
		av->ring[av->idx % QSIZE] = QSIZE + 5; /* a head beyond the ring */
		__atomic_store_n(&av->idx, (uint16_t)(av->idx + 1), __ATOMIC_RELEASE);
		c->kick(c->kick_opaque);
		st = 0;
		for (uint64_t dl = now_ms() + WAIT_MS;
		     !(st & VIRTIO_CONFIG_S_NEEDS_RESET) && now_ms() < dl;) {
			usleep(2000);
			assert_int_equal(vio_vhu_frontend_get_status(fe.f, &st), 0);
		}
		assert_true(st & VIRTIO_CONFIG_S_NEEDS_RESET);
		assert_int_equal(atomic_load(&s->faults), round + 1);
		check_pat(&fe, 0, 0, 8192, 31);
		write_pat(&fe, 0, 16, 8192, 32 + round);
		fe_close(&fe, round == 0); /* GET_VRING_BASE on the broken ring too */
		assert_idle(s);
	}

	fe_open(&fe, s, v, 2, 2);
	assert_int_equal(vio_vhu_frontend_get_status(fe.f, &st), 0);
	assert_int_equal(st & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
	check_pat(&fe, 1, 0, 8192, 31);
	check_pat(&fe, 1, 16, 8192, 33);
	write_pat(&fe, 1, 32, 8192, 34);
	check_pat(&fe, 0, 32, 8192, 34);
	fe_close(&fe, true);
	assert_idle(s);
	assert_int_equal(atomic_load(&s->faults), 2);
	srv_free(s);
}

/* -------------------------------------------- 4. disconnect, reconnect */

/*
 * A front-end written by hand: one split ring of RAW_QSIZE laid out by the
 * core's driver side in a memfd, no protocol features (rings start enabled),
 * kick and call eventfds or none (NOFD: the backend must poll the ring).
 */
#define RAW_MEM (1u << 20)
#define RAW_QSIZE 64

struct raw_fe {
	int sock, kick_fd, call_fd;
	void *mem;
	struct vio_mem map;
	struct vio_virtq vq;
};

static void raw_send(struct raw_fe *r, struct vio_vhu_msg *m)
{
	assert_int_equal(vio_vhu_msg_send(r->sock, m), 0);
}

static void raw_vring_fd(struct raw_fe *r, uint32_t req, int fd)
{
	struct vio_vhu_msg m = { .request = req, .size = 8 };

	m.p.u64 = 0;
	if (fd >= 0) {
		m.fds[0] = fd;
		m.nfds = 1;
	} else {
		m.p.u64 |= VHOST_USER_VRING_NOFD_MASK;
	}
	raw_send(r, &m);
}

static void raw_open(struct raw_fe *r, struct srv *s, bool with_fds)
{
	const uint64_t f = VIO_BIT(VIRTIO_F_VERSION_1) | VIO_BIT(VIRTIO_BLK_F_FLUSH);
	size_t area = vio_virtq_driver_area_size(f, RAW_QSIZE, 0);
	struct vio_virtq_addrs a;
	struct vio_vhu_msg m;
	int mfd;

	memset(r, 0, sizeof(*r));
	r->kick_fd = r->call_fd = -1;
	r->sock = vio_vhu_connect(s->sock);
	assert_true(r->sock >= 0);
	assert_int_equal(vio_vhu_set_timeout(r->sock, 2000), 0);
	m = (struct vio_vhu_msg){ .request = VHOST_USER_SET_OWNER };
	raw_send(r, &m);
	m = (struct vio_vhu_msg){ .request = VHOST_USER_GET_FEATURES };
	raw_send(r, &m);
	assert_int_equal(vio_vhu_msg_recv_reply(r->sock, VHOST_USER_GET_FEATURES, false, &m, "test"), 0);
	assert_int_equal(m.p.u64 & f, f);
	m = (struct vio_vhu_msg){ .request = VHOST_USER_SET_FEATURES, .size = 8 };
	m.p.u64 = f;
	raw_send(r, &m);

	mfd = memfd_create("raw-guest", MFD_CLOEXEC);
	assert_true(mfd >= 0);
	assert_int_equal(ftruncate(mfd, RAW_MEM), 0);
	r->mem = mmap(NULL, RAW_MEM, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	assert_true(r->mem != MAP_FAILED);
	vio_mem_init(&r->map);
	assert_int_equal(vio_mem_add(&r->map, &(struct vio_mem_region){
						.gpa = 0, .size = RAW_MEM, .host = r->mem }), 0);
	assert_int_equal(vio_virtq_driver_init(&r->vq, f, RAW_QSIZE, 0, r->mem, 0, area, &a), 0);
	m = (struct vio_vhu_msg){ .request = VHOST_USER_SET_MEM_TABLE,
				  .size = VIO_VHU_MEM_HDR_SIZE + sizeof(struct vio_vhu_mem_region) };
	m.p.memory.nregions = 1;
	m.p.memory.regions[0] = (struct vio_vhu_mem_region){ 0, RAW_MEM, (uintptr_t)r->mem, 0 };
	m.fds[0] = mfd;
	m.nfds = 1;
	raw_send(r, &m);
	close(mfd);
	m = (struct vio_vhu_msg){ .request = VHOST_USER_SET_VRING_NUM, .size = 8 };
	m.p.state = (struct vio_vhu_vring_state){ 0, RAW_QSIZE };
	raw_send(r, &m);
	m = (struct vio_vhu_msg){ .request = VHOST_USER_SET_VRING_ADDR, .size = 40 };
	m.p.addr.desc_user_addr = (uintptr_t)r->mem + a.desc;
	m.p.addr.avail_user_addr = (uintptr_t)r->mem + a.driver;
	m.p.addr.used_user_addr = (uintptr_t)r->mem + a.device;
	raw_send(r, &m);
	if (with_fds) {
		r->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		r->call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		assert_true(r->kick_fd >= 0 && r->call_fd >= 0);
	}
	raw_vring_fd(r, VHOST_USER_SET_VRING_CALL, r->call_fd);
	raw_vring_fd(r, VHOST_USER_SET_VRING_KICK, r->kick_fd);
	/* A round trip: the backend has applied all of the above. */
	m = (struct vio_vhu_msg){ .request = VHOST_USER_GET_QUEUE_NUM };
	raw_send(r, &m);
	assert_int_equal(vio_vhu_msg_recv_reply(r->sock, VHOST_USER_GET_QUEUE_NUM, false, &m, "test"), 0);
	assert_int_equal(srv_snap(s).running, 1);
	assert_int_equal(atomic_load(&s->polled), 1);
}

static void raw_close(struct raw_fe *r)
{
	close(r->sock);
	if (r->kick_fd >= 0)
		close(r->kick_fd);
	if (r->call_fd >= 0)
		close(r->call_fd);
	vio_virtq_fini(&r->vq);
	munmap(r->mem, RAW_MEM);
}

/* A ring running, then half a message and gone. */
static void raw_midsetup(struct srv *s)
{
	struct raw_fe r;

	raw_open(&r, s, true);
	assert_int_equal(write(r.sock, "\x0b\0\0\0\x01", 5), 5);
	raw_close(&r);
}

#define R1 0ull     /* written by the first front-end, 1 MiB */
#define R2 4096ull  /* by the second, 1 MiB */
#define R3 8192ull  /* in flight when the second vanishes, 2 MiB */
#define INFLIGHT 96
#define IF_SECTORS 16u
#define IF_BYTES (IF_SECTORS * 512)

static void noop_cb(void *opaque, int status, uint32_t len)
{
}

struct tally {
	unsigned done, ok;
};

static void tally_cb(void *opaque, int status, uint32_t len)
{
	struct tally *t = opaque;

	t->done++;
	t->ok += status == VIRTIO_BLK_S_OK && len == 1;
}

/* Poll q until t->done reaches want, bounded (a burst may take it past). */
static void reap_until(struct fe *fe, unsigned q, struct tally *t, unsigned want)
{
	const struct vio_drv_ctx *c = vio_vhu_frontend_queue(fe->f, q);
	uint64_t dl = now_ms() + TMO;

	while (t->done < want && now_ms() < dl) {
		assert_true(vio_blk_client_poll(fe->cl, q) >= 0);
		if (t->done < want)
			wait_call(c, 5);
	}
	assert_true(t->done >= want);
}

#define R4 12288ull /* written across a ring stop and restart */
#define STOP_N 64u

/*
 * GET_VRING_BASE with requests in flight is answered only once every request
 * the device took is used (the base's used position has caught up with its
 * available one); the rest wait in the ring and run when it starts again
 * from that base.
 */
static void stop_with_inflight(struct fe *fe, unsigned q)
{
	const struct vio_drv_ctx *c = vio_vhu_frontend_queue(fe->f, q);
	struct vio_virtq *vq = c->vq;
	/* Everything before was used: the device reads the ring where we write next. */
	uint32_t pre = vq->packed ? vq->l.packed.next_avail : vq->l.split.avail_idx_shadow;
	/* Each request is 3 buffers: one slot with an indirect table, else 3. */
	unsigned per_req = vq->packed && !(vq->indirect_max >= 3) ? 3 : 1;
	struct tally t = { 0 };
	unsigned taken;
	uint32_t base = 0;

	assert_int_equal(vio_blk_client_inflight(fe->cl, q), 0);
	for (unsigned i = 0; i < STOP_N; i++) {
		uint8_t *b = fe->wbuf + (size_t)i * IF_BYTES;
		struct iovec iov = { b, IF_BYTES };
		struct vio_blk_client_req r = { .type = VIRTIO_BLK_T_OUT,
						.sector = R4 + i * IF_SECTORS, .iov = &iov,
						.niov = 1 };

		fill(b, IF_BYTES, 44, (R4 + i * IF_SECTORS) * 512);
		assert_int_equal(vio_blk_client_submit(fe->cl, q, &r, tally_cb, &t), 0);
		if (i % 16 == 15)
			vio_blk_client_kick(fe->cl, q);
	}
	/* Stop as soon as the device has answered one: others are likely mid-way. */
	reap_until(fe, q, &t, 1);
	assert_int_equal(vio_vhu_frontend_stop_queue(fe->f, q, &base), 0);
	if (vq->packed) {
		/* bits 0-15: next slot to read and its wrap; 16-31: next used slot and its wrap */
		assert_int_equal(base & 0xffff, base >> 16);
		taken = ((base & 0x7fff) + QSIZE - pre) % QSIZE / per_req;
	} else {
		assert_true(base <= UINT16_MAX);
		assert_int_equal(__atomic_load_n(&vq->l.split.used->idx, __ATOMIC_ACQUIRE), base);
		taken = (uint16_t)(base - pre);
	}
	assert_true(taken >= 1 && taken <= STOP_N);
	reap_until(fe, q, &t, taken);
	assert_int_equal(t.done, taken);
	usleep(20000);
	assert_int_equal(vio_blk_client_poll(fe->cl, q), 0); /* stopped: nothing more */
	assert_int_equal(vio_vhu_frontend_start_queue(fe->f, q, base), 0);
	vio_blk_client_kick(fe->cl, q);
	reap_until(fe, q, &t, STOP_N);
	assert_int_equal(t.done, STOP_N);
	assert_int_equal(t.ok, STOP_N);
	check_pat(fe, q, R4, STOP_N * IF_BYTES, 44);
	print_message("ring stopped with %u of %u requests taken\n", taken, STOP_N);
}

static void test_reconnect(void **state)
{
	const struct variant *v = *state;
	struct vio_blk_opts bo = { .ram_size = DISK, .queues = 2 };
	struct srv *s = srv_new(&bo, v, 2);
	struct variant too_many = *v, other = *v;
	struct fe fe;
	int connects;

	if (!s)
		skip();
	/* A: writes, everything completes, clean disconnect. */
	fe_open(&fe, s, v, 2, 2);
	write_pat(&fe, 0, R1, 512 << 10, 41);
	write_pat(&fe, 1, R1 + 1024, 512 << 10, 41);
	fe_close(&fe, true);
	assert_idle(s);

	/* B: sees A's data, writes its own, then vanishes with requests in flight. */
	fe_open(&fe, s, v, 2, 2);
	check_pat(&fe, 1, R1, 1 << 20, 41);
	write_pat(&fe, 0, R2, 1 << 20, 42);
	stop_with_inflight(&fe, 1); /* the poller gives back exactly that queue */
	stop_with_inflight(&fe, 0);
	for (unsigned i = 0; i < INFLIGHT; i++) {
		unsigned q = i % 2;
		uint8_t *b = fe.wbuf + (size_t)i * IF_BYTES;
		struct iovec iov = { b, IF_BYTES };
		struct vio_blk_client_req r = { .type = VIRTIO_BLK_T_OUT,
						.sector = R3 + i * IF_SECTORS, .iov = &iov,
						.niov = 1 };

		fill(b, IF_BYTES, 43, (R3 + i * IF_SECTORS) * 512);
		assert_int_equal(vio_blk_client_submit(fe.cl, q, &r, noop_cb, NULL), 0);
		if (i % 8 == 7)
			vio_blk_client_kick(fe.cl, q);
	}
	vio_blk_client_kick(fe.cl, 0);
	vio_blk_client_kick(fe.cl, 1);
	fe_close(&fe, false);
	assert_idle(s);

	/* Mid-setup: a front-end wanting more queues than the device has gives up. */
	connects = atomic_load(&s->connects);
	too_many.features |= VIO_BIT(VIRTIO_BLK_F_MQ);
	assert_int_equal(fe_try_open(&fe, s, &too_many, 3, 1), -ENOTSUP);
	assert_int_equal(atomic_load(&s->connects), connects + 1);
	assert_idle(s);

	/* Mid-setup: a ring running, then half a message and gone. */
	raw_midsetup(s);
	assert_idle(s);

	/* C, with the other ring layout: everything A and B completed is there. */
	other.features ^= PACKED;
	fe_open(&fe, s, &other, 2, 2);
	assert_int_equal(!!(vio_vhu_frontend_features(fe.f) & PACKED), !(v->features & PACKED));
	check_pat(&fe, 0, R1, 1 << 20, 41);
	check_pat(&fe, 1, R2, 1 << 20, 42);
	/* Each of B's last writes either happened or not, sector by sector. */
	for (unsigned i = 0; i < INFLIGHT; i++) {
		uint64_t sec = R3 + i * IF_SECTORS;

		assert_int_equal(rw(&fe, 0, false, sec, fe.rbuf, IF_BYTES, 1, NULL), VIRTIO_BLK_S_OK);
		for (unsigned k = 0; k < IF_SECTORS; k++)
			assert_true(all_byte(fe.rbuf + k * 512, 512, 0) ||
				    check(fe.rbuf + k * 512, 512, 43, (sec + k) * 512) == -1);
	}
	fe_close(&fe, true);
	assert_idle(s);
	assert_int_equal(atomic_load(&s->faults), 0);
	assert_int_equal(atomic_load(&s->connects), connects + 3);
	srv_free(s);
}

/*
 * SET_VRING_KICK with NOFD: the front-end never kicks, the backend must poll
 * the ring, also after it has been idle long enough for the poller to sleep.
 */
static void test_polling_ring(void **state)
{
	const struct variant *v = *state;
	struct vio_blk_opts bo = { .ram_size = DISK };
	struct srv *s = srv_new(&bo, v, 1);
	struct raw_fe r;

	raw_open(&r, s, false);
	for (unsigned i = 0; i < 4; i++) {
		struct virtio_blk_outhdr *h = (void *)((uint8_t *)r.mem + RAW_MEM / 2);
		uint8_t *data = (uint8_t *)h + 4096, *st = (uint8_t *)h + 1024;
		struct iovec iov[3] = { { h, 16 }, { data, 4096 }, { st, 1 } };
		uint64_t dl;
		void *cookie = NULL;
		uint32_t len = 0;
		int got = 0;

		usleep(30000); /* idle well past the poller's spin: it would sleep now */
		*h = (struct virtio_blk_outhdr){ .type = i % 2 ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT,
						 .sector = 64 };
		if (i % 2 == 0)
			fill(data, 4096, 50 + i, 64 * 512);
		else
			memset(data, 0, 4096);
		*st = 0xee;
		assert_int_equal(vio_virtq_add(&r.vq, &r.map, iov, i % 2 ? 1 : 2, i % 2 ? 2 : 1,
					       RAW_COOKIE), 0);
		vio_virtq_publish(&r.vq); /* and no kick: there is no kick fd */
		for (dl = now_ms() + 2000; !got && now_ms() < dl; usleep(1000))
			got = vio_virtq_get_used_burst(&r.vq, &cookie, &len, 1);
		assert_int_equal(got, 1);
		assert_int_equal(*st, VIRTIO_BLK_S_OK);
		assert_int_equal(len, i % 2 ? 4097 : 1);
		if (i % 2)
			assert_int_equal(check(data, 4096, 50 + i - 1, 64 * 512), -1);
	}
	raw_close(&r);
	assert_idle(s);
	srv_free(s);
}

/* -------------------------------------------- 5. config space */

static void test_config(void **state)
{
	const struct variant *v = *state;
	struct vio_blk_opts bo = { .ram_size = DISK, .queues = 3 };
	struct srv *s = srv_new(&bo, v, 1);
	struct virtio_blk_config cfg;
	uint16_t nq = 0;
	uint64_t f;
	uint8_t b;
	struct fe fe;

	if (!s)
		skip();
	fe_open(&fe, s, v, 1, 1);
	f = vio_vhu_frontend_features(fe.f);
	assert_int_equal(f, (BLK_WANTED | v->features | VIO_BIT(VIRTIO_F_VERSION_1)) &
				    ~VIO_BIT(VIRTIO_BLK_F_RO));
	assert_true(vio_vhu_frontend_protocol_features(fe.f) &
		    VIO_BIT(VHOST_USER_PROTOCOL_F_CONFIG));
	memset(&cfg, 0xff, sizeof(cfg));
	assert_int_equal(vio_vhu_frontend_get_config(fe.f, 0, &cfg, VIO_BLK_CONFIG_LEN), 0);
	assert_int_equal(cfg.capacity, SECTORS);
	assert_int_equal(cfg.blk_size, 512);
	assert_int_equal(cfg.seg_max, VIO_BLK_SEG_MAX);
	assert_int_equal(cfg.size_max, VIO_BLK_SIZE_MAX);
	assert_int_equal(cfg.num_queues, 3);
	assert_int_equal(cfg.max_discard_seg, VIO_BLK_MAX_DWZ_SEG);
	/* The engine may lower the per-range limit (RAM does work inline: 16 MiB). */
	assert_true(cfg.max_discard_sectors > 0 && cfg.max_discard_sectors <= VIO_BLK_MAX_DWZ_SECTORS);
	assert_int_equal(cfg.max_write_zeroes_seg, VIO_BLK_MAX_DWZ_SEG);
	assert_int_equal(cfg.max_write_zeroes_sectors, cfg.max_discard_sectors);
	/* One sector over the advertised limit is refused, the limit itself is served. */
	assert_int_equal(dwz(&fe, 0, VIRTIO_BLK_T_WRITE_ZEROES, 0, cfg.max_write_zeroes_sectors + 1,
			     0), VIRTIO_BLK_S_IOERR);
	if (cfg.max_write_zeroes_sectors <= SECTORS)
		assert_int_equal(dwz(&fe, 0, VIRTIO_BLK_T_WRITE_ZEROES, 0,
				     cfg.max_write_zeroes_sectors, 0), VIRTIO_BLK_S_OK);
	/* A piece of it, at its offset. */
	assert_int_equal(vio_vhu_frontend_get_config(fe.f, offsetof(struct virtio_blk_config,
								     num_queues), &nq, 2), 0);
	assert_int_equal(nq, 3);
	/* Outside it: refused, and the connection lives on. */
	assert_int_equal(vio_vhu_frontend_get_config(fe.f, VIO_BLK_CONFIG_LEN, &b, 1), -EIO);
	assert_int_equal(vio_vhu_frontend_get_config(fe.f, 8, &cfg, VIO_BLK_CONFIG_LEN), -EIO);
	/* Nothing is writable (no CONFIG_WCE): accepted, ignored. */
	nq = 9;
	assert_int_equal(vio_vhu_frontend_set_config(fe.f, offsetof(struct virtio_blk_config,
								     num_queues), &nq, 2), 0);
	assert_int_equal(vio_vhu_frontend_get_config(fe.f, offsetof(struct virtio_blk_config,
								     num_queues), &nq, 2), 0);
	assert_int_equal(nq, 3);
	/* Capacity is real: the last sector works, the next does not. */
	assert_int_equal(rw(&fe, 0, true, cfg.capacity - 1, fe.wbuf, 512, 1, NULL),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(rw(&fe, 0, true, cfg.capacity, fe.wbuf, 512, 1, NULL),
			 VIRTIO_BLK_S_IOERR);
	fe_close(&fe, true);
	assert_idle(s);
	srv_free(s);
}

/* -------------------------------------------- registration */

static int setup(void **state)
{
	alarm(30); /* a hang anywhere still ends the run */
	return 0;
}

static int teardown(void **state)
{
	if (cur_srv)
		srv_destroy(cur_srv); /* after a failure: no socket dir left in /tmp */
	alarm(0);
	return 0;
}

#define T(f, v) { #f "_" #v, f, setup, teardown, (void *)&v }

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_all_types, v_split),
		T(test_all_types, v_packed),
		T(test_all_types, v_split_file),
		T(test_all_types, v_split_iommu),
		T(test_all_types, v_packed_iommu),
		T(test_multiqueue, v_split),
		T(test_multiqueue, v_packed_plain),
		T(test_multiqueue, v_split_file),
		T(test_multiqueue, v_packed_iommu),
		T(test_misshaped, v_split_plain),
		T(test_misshaped, v_packed_plain),
		T(test_readonly, v_packed),
		T(test_ring_fault, v_split),
		T(test_reconnect, v_split),
		T(test_reconnect, v_split_file),
		T(test_reconnect, v_split_direct),
		T(test_reconnect, v_packed),
		T(test_reconnect, v_packed_plain),
		T(test_reconnect, v_split_iommu),
		T(test_polling_ring, v_split_plain),
		T(test_config, v_split),
		T(test_config, v_split_file),
	};

	if (getenv("VIO_TEST_LOG"))
		vio_log_set(vio_log_stderr, NULL, VIO_LOG_DEBUG);
	return cmocka_run_group_tests_name("vhu_blk", tests, NULL, NULL);
}
