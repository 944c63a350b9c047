/* SPDX-License-Identifier: MIT */
/*
 * vio's vhost-user frontend against vio's backend in one process: the backend
 * is dispatched by a thread, each running queue is polled by a thread the
 * test's hooks start and stop, and a tiny device reverses bytes. Also raw
 * front-ends that misbehave or vanish half-way through setup.
 */
#include <dirent.h>
#include <fcntl.h>
#include <errno.h>
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
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_util.h"
#include "vhost_user/msg.h"
#include "vhost_user/socket.h"
#include "core/mem_internal.h"
#include "core/virtq_internal.h"
#include "vio/vio.h"

#define NQ 2
#define CFG_LEN 16
#define BUF 64

/* ------------------------------------------------------ the test device */

struct rev_dev {
	uint8_t config[CFG_LEN];
	struct vio_vq_ctx ctx[NQ];
	atomic_uint started[NQ];
};

static uint64_t rev_features(void *dev)
{
	return VIO_BIT(VIRTIO_F_EVENT_IDX) | VIO_BIT(VIRTIO_F_INDIRECT_DESC) |
	       VIO_BIT(VIRTIO_F_RING_PACKED);
}

static uint32_t rev_config_len(void *dev)
{
	return CFG_LEN;
}

static int rev_get_config(void *dev, uint32_t off, void *buf, uint32_t len)
{
	struct rev_dev *d = dev;

	if (off > CFG_LEN || len > CFG_LEN - off)
		return -EINVAL;
	memcpy(buf, d->config + off, len);
	return 0;
}

static int rev_set_config(void *dev, uint32_t off, const void *buf, uint32_t len)
{
	struct rev_dev *d = dev;

	if (off < 8 || off > CFG_LEN || len > CFG_LEN - off)
		return -EINVAL; /* the first 8 bytes are read-only */
	memcpy(d->config + off, buf, len);
	return 0;
}

static unsigned rev_max_queues(void *dev)
{
	return NQ;
}

static int rev_queue_start(void *dev, unsigned q, const struct vio_vq_ctx *ctx, uint64_t f)
{
	struct rev_dev *d = dev;

	d->ctx[q] = *ctx;
	atomic_fetch_add(&d->started[q], 1);
	return 0;
}

/* Copy the readable bytes, reversed, into the writable part. */
static int rev_queue_poll(void *dev, unsigned q)
{
	struct rev_dev *d = dev;
	struct vio_vq_ctx *c = &d->ctx[q];
	struct iovec iov[8][8];
	struct vio_chain ch[8];
	struct vio_used_elem used[8];
	int n;

	for (int i = 0; i < 8; i++) {
		ch[i].iov = iov[i];
		ch[i].iov_cap = 8;
	}
	n = vio_virtq_pop_burst(c->vq, c->mem, ch, 8);
	if (n <= 0)
		return n;
	for (int i = 0; i < n; i++) {
		uint8_t tmp[1024];
		uint32_t len = 0, w = 0;

		for (unsigned k = 0; k < ch[i].nout && ch[i].status == 0; k++) {
			size_t l = iov[i][k].iov_len;

			if (len + l > sizeof(tmp))
				l = sizeof(tmp) - len;
			memcpy(tmp + len, iov[i][k].iov_base, l);
			len += (uint32_t)l;
		}
		unsigned end = ch[i].nout + ch[i].nin;

		for (unsigned k = ch[i].nout; k < end && ch[i].status == 0; k++) {
			uint8_t *p = iov[i][k].iov_base;

			for (size_t j = 0; j < iov[i][k].iov_len && w < len; j++, w++)
				p[j] = tmp[len - 1 - w];
		}
		used[i] = (struct vio_used_elem){ .id = ch[i].id, .ndesc = ch[i].ndesc, .len = w };
	}
	vio_virtq_push_burst(c->vq, used, (unsigned)n);
	if (vio_virtq_device_should_notify(c->vq))
		c->notify(c->notify_opaque);
	return n;
}

static int rev_queue_wait_fd(void *dev, unsigned q)
{
	return -1;
}

static void rev_queue_stop(void *dev, unsigned q)
{
	struct rev_dev *d = dev;

	/* Everything popped was pushed in the same poll: nothing is in flight. */
	atomic_fetch_sub(&d->started[q], 1);
}

static const struct vio_vdev_ops rev_ops = {
	.get_features = rev_features,
	.config_len = rev_config_len,
	.get_config = rev_get_config,
	.set_config = rev_set_config,
	.max_queues = rev_max_queues,
	.queue_start = rev_queue_start,
	.queue_poll = rev_queue_poll,
	.queue_wait_fd = rev_queue_wait_fd,
	.queue_stop = rev_queue_stop,
};

/* -------------------------------------------- the application: pollers */

struct app;

struct poller {
	struct app *a;
	pthread_t t;
	atomic_bool stop;
	bool active;
	unsigned q;
	struct vio_virtq *vq;
	int kick_fd;
};

struct app {
	struct rev_dev dev;
	struct vio_vhu_backend *b;
	struct poller p[NQ];
	pthread_t loop;
	atomic_bool loop_stop;
	atomic_int connected;
	atomic_int faults;
};

static void *poll_thread(void *arg)
{
	struct poller *p = arg;
	struct app *a = p->a;

	while (!atomic_load(&p->stop)) {
		int n = rev_queue_poll(&a->dev, p->q);
		struct pollfd pfd = { .fd = p->kick_fd, .events = POLLIN };
		uint64_t v;

		if (n < 0) {
			/* broken for good: idle until the backend takes the queue back */
			poll(NULL, 0, 5);
			continue;
		}
		if (n > 0)
			continue;
		if (vio_virtq_device_enable_notify(p->vq))
			continue;
		if (p->kick_fd >= 0 && poll(&pfd, 1, 5) > 0 && read(p->kick_fd, &v, 8) < 0)
			break;
		vio_virtq_device_disable_notify(p->vq);
	}
	return NULL;
}

static int app_start_queue(void *opaque, unsigned q, struct vio_virtq *vq, int kick_fd)
{
	struct app *a = opaque;
	struct poller *p = &a->p[q];

	/* runs on the backend's thread: no cmocka asserts here */
	if (p->active)
		return -1;
	p->a = a;
	p->q = q;
	p->vq = vq;
	p->kick_fd = kick_fd;
	atomic_store(&p->stop, false);
	if (pthread_create(&p->t, NULL, poll_thread, p))
		return -1;
	p->active = true;
	return 0;
}

static void app_stop_queue(void *opaque, unsigned q)
{
	struct app *a = opaque;
	struct poller *p = &a->p[q];

	if (!p->active)
		abort(); /* the backend stopped a queue it never started */
	atomic_store(&p->stop, true);
	pthread_join(p->t, NULL);
	p->active = false;
}

static void app_connection(void *opaque, bool up)
{
	struct app *a = opaque;

	atomic_fetch_add(&a->connected, up ? 1 : -1);
}

static void app_fault(void *opaque, unsigned q, enum vio_virtq_fault why)
{
	struct app *a = opaque;

	atomic_fetch_add(&a->faults, 1);
}

static void *loop_thread(void *arg)
{
	struct app *a = arg;

	while (!atomic_load(&a->loop_stop))
		if (vio_vhu_backend_run_once(a->b, 10) < 0)
			break;
	return NULL;
}

static char sock_path[64];

static struct app *app_new(void)
{
	struct app *a = calloc(1, sizeof(*a));
	struct vio_vhu_backend_opts o = {
		.socket_path = sock_path,
		.vdev = { .ops = &rev_ops, .dev = &a->dev },
		.hooks = { .start_queue = app_start_queue, .stop_queue = app_stop_queue,
			   .connection = app_connection, .queue_fault = app_fault },
		.hooks_opaque = a,
		.msg_timeout_ms = 1000,
	};

	for (int i = 0; i < CFG_LEN; i++)
		a->dev.config[i] = (uint8_t)(0x40 + i);
	static int seq;

	/* A fresh path per test: a failed test leaves its backend behind. */
	snprintf(sock_path, sizeof(sock_path), "/tmp/vio-vhu-test-%d-%d.sock", (int)getpid(),
		 seq++);
	assert_int_equal(vio_vhu_backend_new(&o, &a->b), 0);
	assert_int_equal(pthread_create(&a->loop, NULL, loop_thread, a), 0);
	return a;
}

static void app_free(struct app *a)
{
	atomic_store(&a->loop_stop, true);
	pthread_join(a->loop, NULL);
	vio_vhu_backend_free(a->b);
	for (int i = 0; i < NQ; i++)
		assert_false(a->p[i].active);
	free(a);
}

static void wait_connected(struct app *a, int want)
{
	for (int i = 0; i < 400 && atomic_load(&a->connected) != want; i++)
		usleep(5000);
	assert_int_equal(atomic_load(&a->connected), want);
}

static int setup(void **state)
{
	alarm(60);
	return 0;
}

/* --------------------------------------------------------- driver side */

/* Send `n` requests on queue q (batches of up to 8 per kick), check every reversed reply. */
static void run_traffic(struct vio_vhu_frontend *f, unsigned q, unsigned n, unsigned seed)
{
	const struct vio_drv_ctx *c = vio_vhu_frontend_queue(f, q);
	uint8_t *out = vio_vhu_frontend_alloc(f, 8 * BUF, 64);
	uint8_t *in = vio_vhu_frontend_alloc(f, 8 * BUF, 64);
	unsigned done = 0;

	assert_non_null(c);
	assert_non_null(out);
	assert_non_null(in);
	while (done < n) {
		unsigned batch = n - done < 8 ? n - done : 8, got = 0;
		time_t deadline = time(NULL) + 5;

		for (unsigned i = 0; i < batch; i++) {
			unsigned len = 1 + (seed + done + i) % BUF;
			struct iovec iov[2] = {
				{ out + i * BUF, len },
				{ in + i * BUF, BUF },
			};

			for (unsigned k = 0; k < len; k++)
				out[i * BUF + k] = (uint8_t)(seed * 31 + done + i + k * 7);
			memset(in + i * BUF, 0, BUF);
			void *cookie = (void *)(uintptr_t)(i + 1);

			assert_int_equal(vio_virtq_add(c->vq, c->mem, iov, 1, 1, cookie), 0);
		}
		if (vio_virtq_kick_prepare(c->vq))
			c->kick(c->kick_opaque);
		while (got < batch) {
			void *cookies[8];
			uint32_t lens[8];
			int k = vio_virtq_get_used_burst(c->vq, cookies, lens, 8);
			struct pollfd pfd = { .fd = c->call_fd, .events = POLLIN };
			uint64_t v;

			assert_true(k >= 0);
			for (int j = 0; j < k; j++) {
				unsigned i = (unsigned)(uintptr_t)cookies[j] - 1;
				unsigned len = 1 + (seed + done + i) % BUF;

				assert_true(i < batch);
				assert_int_equal(lens[j], len);
				for (unsigned b = 0; b < len; b++)
					assert_int_equal(in[i * BUF + b],
							 out[i * BUF + len - 1 - b]);
			}
			got += (unsigned)k;
			if (k || !vio_virtq_driver_enable_cb(c->vq))
				continue;
			if (poll(&pfd, 1, 100) > 0)
				assert_int_equal(read(c->call_fd, &v, 8), 8);
			assert_true(time(NULL) <= deadline);
		}
		done += batch;
	}
}

static struct vio_vhu_frontend *fe_connect(uint64_t features)
{
	struct vio_vhu_frontend_opts o = {
		.socket_path = sock_path,
		.mem_size = 4 << 20,
		.features = features,
		.nqueues = NQ,
		.queue_size = 64,
		.indirect_max = 8,
		.timeout_ms = 3000,
	};
	struct vio_vhu_frontend *f = NULL;

	assert_int_equal(vio_vhu_frontend_connect(&o, &f), 0);
	return f;
}

static void loop_roundtrip(uint64_t features)
{
	struct app *a = app_new();
	int fds_idle;
	struct vio_vhu_frontend *f;
	uint8_t cfg[CFG_LEN], st = 0;
	uint32_t base = 0;

	wait_connected(a, 0);
	fds_idle = count_fds();
	for (int round = 0; round < 2; round++) {
		f = fe_connect(features);
		wait_connected(a, 1);
		assert_true(vio_vhu_frontend_features(f) & VIO_BIT(VIRTIO_F_VERSION_1));
		assert_int_equal(vio_vhu_frontend_features(f) & ~VIO_BIT(VIRTIO_F_VERSION_1),
				 features);
		assert_true(vio_vhu_frontend_protocol_features(f) &
			    VIO_BIT(VHOST_USER_PROTOCOL_F_REPLY_ACK));

		/* config: read, refused write to a read-only field, accepted write */
		assert_int_equal(vio_vhu_frontend_get_config(f, 0, cfg, CFG_LEN), 0);
		for (int i = 0; i < CFG_LEN; i++)
			assert_int_equal(cfg[i], 0x40 + i);
		assert_int_equal(vio_vhu_frontend_get_config(f, 8, cfg, 16), -EIO);
		assert_int_equal(vio_vhu_frontend_set_config(f, 0, "\1", 1), -EIO);
		assert_int_equal(vio_vhu_frontend_set_config(f, 12, "\x99", 1), 0);
		assert_int_equal(vio_vhu_frontend_get_config(f, 12, cfg, 1), 0);
		assert_int_equal(cfg[0], 0x99);
		assert_int_equal(vio_vhu_frontend_set_config(f, 12, "\x4c", 1), 0);

		assert_int_equal(vio_vhu_frontend_get_status(f, &st), 0);
		assert_int_equal(st, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
				     VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);

		run_traffic(f, 0, 300, 1);
		run_traffic(f, 1, 200, 2);

		/* GET_VRING_BASE stops the ring; starting it from that base resumes it. */
		assert_int_equal(vio_vhu_frontend_stop_queue(f, 0, &base), 0);
		if (features & VIO_BIT(VIRTIO_F_RING_PACKED)) {
			/* each request took 1 slot (indirect table) or 2, on a 64-slot ring */
			bool ind = features & VIO_BIT(VIRTIO_F_INDIRECT_DESC);
			unsigned slots = 300 * (ind ? 1 : 2);

			assert_int_equal(base & 0x7fff, slots % 64);
			assert_int_equal((base >> 16) & 0x7fff, slots % 64);
			assert_int_equal(!!(base & 0x8000), !((slots / 64) & 1));
		} else {
			assert_int_equal(base, 300);
		}
		assert_int_equal(vio_vhu_frontend_start_queue(f, 0, base), 0);
		run_traffic(f, 0, 50, 3);
		run_traffic(f, 1, 50, 4);

		assert_int_equal(vio_vhu_frontend_disconnect(f), 0);
		vio_vhu_frontend_close(f);
		wait_connected(a, 0);
		assert_int_equal(atomic_load(&a->dev.started[0]), 0);
		assert_int_equal(atomic_load(&a->dev.started[1]), 0);
		assert_int_equal(count_fds(), fds_idle);
	}
	assert_int_equal(atomic_load(&a->faults), 0);
	app_free(a);
}

static void test_loop_split(void **state)
{
	loop_roundtrip(VIO_BIT(VIRTIO_F_EVENT_IDX));
}

static void test_loop_split_plain(void **state)
{
	loop_roundtrip(0);
}

static void test_loop_packed_plain(void **state)
{
	loop_roundtrip(VIO_BIT(VIRTIO_F_RING_PACKED));
}

static void test_loop_packed(void **state)
{
	loop_roundtrip(VIO_BIT(VIRTIO_F_RING_PACKED) | VIO_BIT(VIRTIO_F_EVENT_IDX) |
		       VIO_BIT(VIRTIO_F_INDIRECT_DESC));
}

/* A driver puts a head index beyond the ring: the device needs a reset, nothing else breaks. */
static void test_fault_needs_reset(void **state)
{
	struct app *a = app_new();
	struct vio_vhu_frontend *f = fe_connect(0);
	const struct vio_drv_ctx *c = vio_vhu_frontend_queue(f, 1);
	struct virtq_avail *av = c->vq->l.split.avail;
	uint8_t st = 0;

	run_traffic(f, 0, 20, 5);
	av->ring[av->idx % 64] = 1000;
	__atomic_store_n(&av->idx, (uint16_t)(av->idx + 1), __ATOMIC_RELEASE);
	c->kick(c->kick_opaque);
	for (int i = 0; i < 200 && !(st & VIRTIO_CONFIG_S_NEEDS_RESET); i++) {
		usleep(5000);
		assert_int_equal(vio_vhu_frontend_get_status(f, &st), 0);
	}
	assert_true(st & VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_int_equal(atomic_load(&a->faults), 1);
	run_traffic(f, 0, 20, 6); /* the other queue still works */
	vio_vhu_frontend_close(f);
	wait_connected(a, 0);
	app_free(a);
}

/* ------------------------------------------------------ raw front-ends */

static int raw_send(int fd, uint32_t req, uint32_t flags, const void *p, uint32_t size, int mfd)
{
	struct vio_vhu_msg m = { .request = req, .flags = flags, .size = size };

	if (size)
		memcpy(m.p.raw, p, size);
	if (mfd >= 0) {
		m.fds[0] = mfd;
		m.nfds = 1;
	}
	return vio_vhu_msg_send(fd, &m);
}

static uint64_t raw_get_u64(int fd, uint32_t req)
{
	struct vio_vhu_msg m;

	assert_int_equal(raw_send(fd, req, 0, NULL, 0, -1), 0);
	assert_int_equal(vio_vhu_msg_recv_reply(fd, req, false, &m, "test"), 0);
	return m.p.u64;
}

/* Send with NEED_REPLY and return the ack value. */
static uint64_t raw_acked(int fd, uint32_t req, const void *p, uint32_t size, int mfd)
{
	struct vio_vhu_msg m;

	assert_int_equal(raw_send(fd, req, VHOST_USER_NEED_REPLY_MASK, p, size, mfd), 0);
	assert_int_equal(vio_vhu_msg_recv_reply(fd, req, true, &m, "test"), 0);
	return m.p.u64;
}

static int raw_connect(struct app *a)
{
	int fd = vio_vhu_connect(sock_path);

	assert_true(fd >= 0);
	assert_int_equal(vio_vhu_set_timeout(fd, 2000), 0);
	wait_connected(a, 1);
	return fd;
}

static void test_midsetup_disconnect(void **state)
{
	struct app *a = app_new();
	int idle, fd, mfd, kfd;
	uint64_t f;
	struct vio_vhu_memory mt = { .nregions = 1 };
	struct vio_vhu_vring_state num = { .index = 0, .num = 64 };
	struct vio_vhu_vring_addr addr = { 0 };
	void *mem;

	wait_connected(a, 0);
	idle = count_fds();
	for (int step = 0; step < 4; step++) {
		fd = raw_connect(a);
		assert_int_equal(raw_send(fd, VHOST_USER_SET_OWNER, 0, NULL, 0, -1), 0);
		f = raw_get_u64(fd, VHOST_USER_GET_FEATURES);
		assert_true(f & VIO_BIT(VHOST_USER_F_PROTOCOL_FEATURES));
		f &= ~VIO_BIT(VHOST_USER_F_PROTOCOL_FEATURES); /* rings start enabled */
		f &= ~VIO_BIT(VIRTIO_F_RING_PACKED);
		f &= ~VIO_BIT(VHOST_F_LOG_ALL); /* logging would hold the rings until a log base */
		assert_int_equal(raw_send(fd, VHOST_USER_SET_FEATURES, 0, &f, 8, -1), 0);
		if (step >= 1) {
			mfd = memfd_create("raw", MFD_CLOEXEC);
			assert_int_equal(ftruncate(mfd, 1 << 20), 0);
			mem = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
			assert_true(mem != MAP_FAILED);
			mt.regions[0].memory_size = 1 << 20;
			mt.regions[0].userspace_addr = (uintptr_t)mem;
			assert_int_equal(raw_send(fd, VHOST_USER_SET_MEM_TABLE, 0, &mt, 40, mfd),
					 0);
			close(mfd);
			assert_int_equal(raw_send(fd, VHOST_USER_SET_VRING_NUM, 0, &num, 8, -1), 0);
			addr.desc_user_addr = (uintptr_t)mem;
			addr.avail_user_addr = (uintptr_t)mem + 4096;
			addr.used_user_addr = (uintptr_t)mem + 8192;
			assert_int_equal(raw_send(fd, VHOST_USER_SET_VRING_ADDR, 0, &addr, 40, -1),
					 0);
		}
		if (step >= 2) {
			uint64_t q0 = 0;

			kfd = eventfd(0, EFD_CLOEXEC);
			assert_int_equal(raw_send(fd, VHOST_USER_SET_VRING_CALL, 0, &q0, 8, kfd),
					 0);
			assert_int_equal(raw_send(fd, VHOST_USER_SET_VRING_KICK, 0, &q0, 8, kfd),
					 0);
			close(kfd);
			/* ring 0 is now running: a round trip proves the backend saw it all */
			assert_int_equal(raw_get_u64(fd, VHOST_USER_GET_QUEUE_NUM), NQ);
			assert_int_equal(atomic_load(&a->dev.started[0]), 1);
		}
		if (step == 3) {
			/* half a message, then gone */
			assert_int_equal(write(fd, "\x05\0\0\0\x01", 5), 5);
		}
		close(fd);
		if (step >= 1)
			munmap(mem, 1 << 20);
		wait_connected(a, 0);
		assert_int_equal(atomic_load(&a->dev.started[0]), 0);
		assert_int_equal(count_fds(), idle);
	}
	/* and a well-behaved front-end works afterwards */
	{
		struct vio_vhu_frontend *fe = fe_connect(0);

		run_traffic(fe, 1, 30, 9);
		vio_vhu_frontend_close(fe);
		wait_connected(a, 0);
		assert_int_equal(count_fds(), idle);
	}
	app_free(a);
}

static void test_backend_refusals(void **state)
{
	struct app *a = app_new();
	int fd = raw_connect(a);
	uint64_t pf, v, bad;
	struct vio_vhu_msg m;
	struct vio_vhu_vring_state s = { .index = 7, .num = 64 };
	struct vio_vhu_mem_single one = { 0 };
	int mfd;
	void *mem;

	/* unknown request: error reply when asked for one, silence otherwise */
	assert_int_equal(raw_send(fd, 99, VHOST_USER_NEED_REPLY_MASK, NULL, 0, -1), 0);
	{
		uint32_t hdr[3];
		uint64_t ack;

		assert_int_equal(vio_vhu_recv_all(fd, hdr, 12), 0);
		assert_int_equal(vio_vhu_recv_all(fd, &ack, 8), 0);
		assert_int_equal(hdr[0], 99);
		assert_int_equal(hdr[1], VHOST_USER_VERSION | VHOST_USER_REPLY_MASK);
		assert_int_equal(hdr[2], 8);
		assert_int_not_equal(ack, 0);
	}
	assert_int_equal(raw_send(fd, 99, 0, NULL, 0, -1), 0);
	v = raw_get_u64(fd, VHOST_USER_GET_FEATURES);
	assert_true(v & VIO_BIT(VIRTIO_F_VERSION_1));

	pf = raw_get_u64(fd, VHOST_USER_GET_PROTOCOL_FEATURES);
	assert_true(pf & VIO_BIT(VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS));
	assert_true(pf & VIO_BIT(VHOST_USER_PROTOCOL_F_LOG_SHMFD));
	assert_false(pf & VIO_BIT(VHOST_USER_PROTOCOL_F_PAGEFAULT));
	bad = VIO_BIT(VHOST_USER_PROTOCOL_F_PAGEFAULT);
	assert_int_not_equal(raw_acked(fd, VHOST_USER_SET_PROTOCOL_FEATURES, &bad, 8, -1), 0);
	assert_int_equal(raw_acked(fd, VHOST_USER_SET_PROTOCOL_FEATURES, &pf, 8, -1), 0);

	bad = v | VIO_BIT(40);
	assert_int_not_equal(raw_acked(fd, VHOST_USER_SET_FEATURES, &bad, 8, -1), 0);
	assert_int_equal(raw_acked(fd, VHOST_USER_SET_FEATURES, &v, 8, -1), 0);
	assert_int_not_equal(raw_acked(fd, VHOST_USER_SET_VRING_NUM, &s, 8, -1), 0);
	s.index = 0;
	s.num = 0;
	assert_int_not_equal(raw_acked(fd, VHOST_USER_SET_VRING_NUM, &s, 8, -1), 0);
	bad = 0 | VHOST_USER_VRING_NOFD_MASK; /* NOFD, yet an fd */
	assert_int_not_equal(raw_acked(fd, VHOST_USER_SET_VRING_KICK, &bad, 8, eventfd(0, 0)), 0);
	bad = 1u << 9; /* reserved bit */
	assert_int_not_equal(raw_acked(fd, VHOST_USER_SET_VRING_CALL, &bad, 8, -1), 0);
	/* SET_LOG_FD keeps an eventfd and refuses anything else */
	assert_int_equal(raw_acked(fd, VHOST_USER_SET_LOG_FD, NULL, 0, eventfd(0, 0)), 0);
	assert_int_not_equal(raw_acked(fd, VHOST_USER_SET_LOG_FD, NULL, 0,
				       memfd_create("notev", MFD_CLOEXEC)), 0);

	/*
	 * memory slots: add; the identical region again is counted (QEMU's
	 * net MQ adds each region once per queue pair); an overlapping one is
	 * refused; each add takes one remove, one more is refused
	 */
	assert_int_equal(raw_get_u64(fd, VHOST_USER_GET_MAX_MEM_SLOTS), VIO_VHU_MAX_MEM_SLOTS);
	mfd = memfd_create("raw", MFD_CLOEXEC);
	assert_int_equal(ftruncate(mfd, 3 * 4096), 0);
	mem = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	one.region = (struct vio_vhu_mem_region){ 0x100000, 8192, (uintptr_t)mem + 4096, 4096 };
	assert_int_equal(raw_acked(fd, VHOST_USER_ADD_MEM_REG, &one, 40, mfd), 0);
	assert_int_equal(raw_acked(fd, VHOST_USER_ADD_MEM_REG, &one, 40, mfd), 0);
	one.region.memory_size = 1ull << 40; /* past the file: mmap may work, overlap refuses */
	assert_int_not_equal(raw_acked(fd, VHOST_USER_ADD_MEM_REG, &one, 40, mfd), 0);
	one.region.memory_size = 8192;
	assert_int_equal(raw_acked(fd, VHOST_USER_REM_MEM_REG, &one, 40, -1), 0);
	assert_int_equal(raw_acked(fd, VHOST_USER_REM_MEM_REG, &one, 40, -1), 0);
	assert_int_not_equal(raw_acked(fd, VHOST_USER_REM_MEM_REG, &one, 40, -1), 0);
	close(mfd);
	munmap(mem, 3 * 4096);

	/* status: DRIVER_OK before FEATURES_OK is walked in order; clearing a bit is refused */
	v = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_DRIVER_OK;
	assert_int_equal(raw_acked(fd, VHOST_USER_SET_STATUS, &v, 8, -1), 0);
	assert_int_equal(raw_get_u64(fd, VHOST_USER_GET_STATUS), v | VIRTIO_CONFIG_S_FEATURES_OK);
	v = VIRTIO_CONFIG_S_ACKNOWLEDGE;
	assert_int_not_equal(raw_acked(fd, VHOST_USER_SET_STATUS, &v, 8, -1), 0);
	assert_int_equal(raw_acked(fd, VHOST_USER_RESET_DEVICE, NULL, 0, -1), 0);
	assert_int_equal(raw_get_u64(fd, VHOST_USER_GET_STATUS), 0);

	/* GET_VRING_BASE for a queue that does not exist: no answer possible, dropped */
	s.index = 9;
	assert_int_equal(raw_send(fd, VHOST_USER_GET_VRING_BASE, 0, &s, 8, -1), 0);
	assert_int_equal(vio_vhu_msg_recv_reply(fd, VHOST_USER_GET_VRING_BASE, false, &m, "test"),
			 -ECONNRESET);
	close(fd);
	wait_connected(a, 0);

	/* a malformed header drops the connection too */
	fd = raw_connect(a);
	assert_int_equal(write(fd, "\x01\0\0\0\x02\0\0\0\0\0\0\0", 12), 12);
	assert_int_equal(vio_vhu_recv_all(fd, &m, 1), -ECONNRESET);
	close(fd);
	wait_connected(a, 0);
	app_free(a);
}


/* ------------------------------------------------------ inflight region */

/* Split region layout (qemu docs/interop/vhost-user.rst), as a front-end sees it. */
struct t_infl_desc {
	uint8_t inflight, pad[5];
	uint16_t next;
	uint64_t counter;
};
struct t_infl_split {
	uint64_t features;
	uint16_t version, desc_num, last_batch_head, used_idx;
	struct t_infl_desc desc[];
};

/* A raw front-end with protocol features (INFLIGHT among them), split rings, queues of 64. */
static int raw_negotiated(struct app *a)
{
	int fd = raw_connect(a);
	uint64_t pf = raw_get_u64(fd, VHOST_USER_GET_PROTOCOL_FEATURES);
	uint64_t f = raw_get_u64(fd, VHOST_USER_GET_FEATURES) &
		     ~(VIO_BIT(VIRTIO_F_RING_PACKED) | VIO_BIT(VHOST_F_LOG_ALL));

	assert_true(pf & VIO_BIT(VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD));
	assert_int_equal(raw_acked(fd, VHOST_USER_SET_PROTOCOL_FEATURES, &pf, 8, -1), 0);
	assert_int_equal(raw_acked(fd, VHOST_USER_SET_FEATURES, &f, 8, -1), 0);
	return fd;
}

/* GET_INFLIGHT_FD: the reply's description, and its fd (or -1). */
static struct vio_vhu_inflight get_inflight(int fd, uint16_t nq, uint16_t qs, int *rfd)
{
	struct vio_vhu_inflight d = { .num_queues = nq, .queue_size = qs };
	struct vio_vhu_msg m;

	assert_int_equal(raw_send(fd, VHOST_USER_GET_INFLIGHT_FD, 0, &d, sizeof(d), -1), 0);
	assert_int_equal(vio_vhu_msg_recv_reply(fd, VHOST_USER_GET_INFLIGHT_FD, false, &m, "test"),
			 0);
	*rfd = m.nfds ? m.fds[0] : -1;
	return m.p.inflight;
}

static void test_inflight_refusals(void **state)
{
	struct app *a = app_new();
	int fd = raw_negotiated(a), rfd, mfd, efd, idle;
	struct vio_vhu_inflight d;
	struct vio_vhu_msg m;

	/* Shapes the backend cannot serve: a size-0 answer, no fd. */
	d = get_inflight(fd, 0, 64, &rfd);
	assert_int_equal(d.mmap_size, 0);
	assert_int_equal(rfd, -1);
	d = get_inflight(fd, NQ + 1, 64, &rfd);
	assert_int_equal(d.mmap_size, 0);
	d = get_inflight(fd, NQ, 0, &rfd);
	assert_int_equal(d.mmap_size, 0);

	/* A good one: a sealed file of exactly the size announced. */
	d = get_inflight(fd, NQ, 64, &rfd);
	assert_true(rfd >= 0);
	assert_int_equal(d.num_queues, NQ);
	assert_int_equal(d.queue_size, 64);
	assert_int_equal(d.mmap_size, NQ * ((16 * 64 + 16 + 63) / 64 * 64));
	assert_int_equal(lseek(rfd, 0, SEEK_END), (off_t)d.mmap_size);
	assert_true(fcntl(rfd, F_GET_SEALS) & F_SEAL_SHRINK);

	/* SET_INFLIGHT_FD: every lie about the fd or the queues is refused. */
	{
		struct vio_vhu_inflight bad = d;

		bad.mmap_size += 64; /* not what NQ queues of 64 take */
		assert_int_not_equal(raw_acked(fd, VHOST_USER_SET_INFLIGHT_FD, &bad, 24, dup(rfd)), 0);
		bad = d;
		bad.num_queues = NQ + 1;
		bad.mmap_size = d.mmap_size / NQ * (NQ + 1);
		assert_int_not_equal(raw_acked(fd, VHOST_USER_SET_INFLIGHT_FD, &bad, 24, dup(rfd)), 0);
		bad = d;
		bad.queue_size = 0;
		assert_int_not_equal(raw_acked(fd, VHOST_USER_SET_INFLIGHT_FD, &bad, 24, dup(rfd)), 0);
		bad = d;
		bad.mmap_offset = 100; /* not page aligned */
		assert_int_not_equal(raw_acked(fd, VHOST_USER_SET_INFLIGHT_FD, &bad, 24, dup(rfd)), 0);
		bad.mmap_offset = 4096; /* past the end of the file */
		assert_int_not_equal(raw_acked(fd, VHOST_USER_SET_INFLIGHT_FD, &bad, 24, dup(rfd)), 0);
		bad.mmap_offset = UINT64_MAX & ~4095ull; /* offset + size wraps */
		assert_int_not_equal(raw_acked(fd, VHOST_USER_SET_INFLIGHT_FD, &bad, 24, dup(rfd)), 0);
		/* not a file at all */
		efd = eventfd(0, EFD_CLOEXEC);
		assert_int_not_equal(raw_acked(fd, VHOST_USER_SET_INFLIGHT_FD, &d, 24, efd), 0);
		/* a file the front-end could shrink later */
		mfd = memfd_create("unsealed", MFD_CLOEXEC);
		assert_int_equal(ftruncate(mfd, (off_t)d.mmap_size), 0);
		assert_int_not_equal(raw_acked(fd, VHOST_USER_SET_INFLIGHT_FD, &d, 24, mfd), 0);
		/* smaller than it says */
		mfd = memfd_create("small", MFD_CLOEXEC | MFD_ALLOW_SEALING);
		assert_int_equal(ftruncate(mfd, 64), 0);
		assert_int_equal(fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK), 0);
		assert_int_not_equal(raw_acked(fd, VHOST_USER_SET_INFLIGHT_FD, &d, 24, mfd), 0);
	}
	assert_int_equal(raw_acked(fd, VHOST_USER_SET_INFLIGHT_FD, &d, 24, dup(rfd)), 0);
	close(rfd);

	/* No fd, or a payload of the spec's unpadded 20 bytes: malformed, the peer is dropped. */
	idle = raw_send(fd, VHOST_USER_SET_INFLIGHT_FD, VHOST_USER_NEED_REPLY_MASK, &d, 20, -1);
	assert_int_equal(idle, 0);
	assert_int_equal(vio_vhu_msg_recv_reply(fd, VHOST_USER_SET_INFLIGHT_FD, true, &m, "test"),
			 -ECONNRESET);
	close(fd);
	wait_connected(a, 0);
	app_free(a);
}

/* Memory of one region: descriptor table, avail and used rings of queue 0 (64 entries). */
#define RAW_MEM (1 << 20)
#define RAW_QS 64

/*
 * Sets up queue 0 on a raw front-end after SET_INFLIGHT_FD with a region
 * the test filled, with `navail` heads made available (head i at avail
 * slot i, each chain one readable and one writable descriptor) and used
 * idx `used`. Returns the guest memory.
 */
static uint8_t *raw_ring_with_region(int fd, int rfd, const struct vio_vhu_inflight *d,
				     uint16_t navail, uint16_t used)
{
	struct vio_vhu_memory mt = { .nregions = 1 };
	struct vio_vhu_vring_state num = { .index = 0, .num = RAW_QS };
	struct vio_vhu_vring_state en = { .index = 0, .num = 1 };
	struct vio_vhu_vring_addr addr = { 0 };
	struct virtq_desc *desc;
	uint16_t *avail, *usedr;
	uint64_t q0 = 0;
	int mfd = memfd_create("raw", MFD_CLOEXEC), kfd;
	uint8_t *mem;

	assert_int_equal(ftruncate(mfd, RAW_MEM), 0);
	mem = mmap(NULL, RAW_MEM, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	assert_true(mem != MAP_FAILED);
	desc = (struct virtq_desc *)mem;
	avail = (uint16_t *)(mem + 4096);
	usedr = (uint16_t *)(mem + 8192);
	for (uint16_t i = 0; i < RAW_QS / 2; i++) {
		desc[2 * i] = (struct virtq_desc){ 0x10000 + i * 64u, 8, VIRTQ_DESC_F_NEXT, 2 * i + 1 };
		desc[2 * i + 1] = (struct virtq_desc){ 0x20000 + i * 64u, 8, VIRTQ_DESC_F_WRITE, 0 };
		memset(mem + 0x10000 + i * 64u, 'a' + i % 26, 8);
	}
	for (uint16_t i = 0; i < navail; i++)
		avail[2 + i] = (uint16_t)(2 * i);
	avail[1] = navail;
	usedr[1] = used;
	mt.regions[0] = (struct vio_vhu_mem_region){ 0, RAW_MEM, (uintptr_t)mem, 0 };
	assert_int_equal(raw_acked(fd, VHOST_USER_SET_MEM_TABLE, &mt, 40, mfd), 0);
	assert_int_equal(raw_acked(fd, VHOST_USER_SET_INFLIGHT_FD, d, 24, dup(rfd)), 0);
	assert_int_equal(raw_acked(fd, VHOST_USER_SET_VRING_NUM, &num, 8, -1), 0);
	addr.desc_user_addr = (uintptr_t)desc;
	addr.avail_user_addr = (uintptr_t)avail;
	addr.used_user_addr = (uintptr_t)usedr;
	assert_int_equal(raw_acked(fd, VHOST_USER_SET_VRING_ADDR, &addr, 40, -1), 0);
	num.num = used; /* the front-end's base after a crash: the used index */
	assert_int_equal(raw_acked(fd, VHOST_USER_SET_VRING_BASE, &num, 8, -1), 0);
	kfd = eventfd(0, EFD_CLOEXEC);
	assert_int_equal(raw_acked(fd, VHOST_USER_SET_VRING_CALL, &q0, 8, kfd), 0);
	assert_int_equal(raw_acked(fd, VHOST_USER_SET_VRING_KICK, &q0, 8, dup(kfd)), 0);
	assert_int_equal(raw_acked(fd, VHOST_USER_SET_VRING_ENABLE, &en, 8, -1), 0);
	return mem;
}

/* Wait (bounded) until the used index of the raw ring reaches want. */
static bool raw_used_reaches(uint8_t *mem, uint16_t want)
{
	for (int i = 0; i < 2000; i++) {
		if (atomic_load((_Atomic uint16_t *)(mem + 8192 + 2)) == want)
			return true;
		usleep(1000);
	}
	return false;
}

/*
 * A restarted backend: heads 0..5 were taken (avail idx 6), used idx 2 (the
 * chains at heads 0 and 4 completed), heads 2, 6, 8, 10 still marked in
 * flight. The backend must pop exactly those four again, in the order of
 * their counters, and then carry on with new ones.
 */
static void test_inflight_resubmit_split(void **state)
{
	struct app *a = app_new();
	int fd = raw_negotiated(a), rfd;
	struct vio_vhu_inflight d = get_inflight(fd, NQ, RAW_QS, &rfd);
	struct t_infl_split *r = mmap(NULL, d.mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, rfd, 0);
	struct virtq_used_elem *ue;
	uint16_t order[4] = { 6, 2, 10, 8 };
	uint8_t *mem;

	assert_true(r != MAP_FAILED);
	r->version = 1;
	r->desc_num = RAW_QS;
	r->used_idx = 2;
	for (int i = 0; i < 4; i++) {
		r->desc[order[i]].inflight = 1;
		r->desc[order[i]].counter = 100 + i;
	}
	mem = raw_ring_with_region(fd, rfd, &d, 6, 2);
	ue = (struct virtq_used_elem *)(mem + 8192 + 4);
	assert_true(raw_used_reaches(mem, 6));
	for (int i = 0; i < 4; i++) {
		assert_int_equal(ue[2 + i].id, order[i]);
		assert_int_equal(ue[2 + i].len, 8);
		assert_int_equal(r->desc[order[i]].inflight, 0);
	}
	assert_int_equal(r->used_idx, 6);
	/* a new chain after the resubmitted ones: avail slot 6 is head 12 */
	((uint16_t *)(mem + 4096))[2 + 6] = 12;
	atomic_store((_Atomic uint16_t *)(mem + 4096 + 2), (uint16_t)7);
	/* no kick: the test's poll thread wakes by itself every few ms */
	assert_true(raw_used_reaches(mem, 7));
	assert_int_equal(ue[6].id, 12);
	assert_false(raw_get_u64(fd, VHOST_USER_GET_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	close(fd);
	wait_connected(a, 0);
	munmap(r, d.mmap_size);
	munmap(mem, RAW_MEM);
	close(rfd);
	app_free(a);
}

/* Regions a front-end scribbled on: the queue fails (NEEDS_RESET), nothing crashes. */
static void test_inflight_corrupt(void **state)
{
	for (int kind = 0; kind < 5; kind++) {
		struct app *a = app_new();
		int fd = raw_negotiated(a), rfd;
		struct vio_vhu_inflight d = get_inflight(fd, NQ, RAW_QS, &rfd);
		struct t_infl_split *r =
			mmap(NULL, d.mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, rfd, 0);
		uint8_t *mem;

		assert_true(r != MAP_FAILED);
		r->version = 1;
		r->desc_num = RAW_QS;
		r->used_idx = 0;
		switch (kind) {
		case 0: r->version = 7; break;
		case 1: r->desc_num = RAW_QS * 2; break;
		case 2: r->desc[3].inflight = 9; break;
		case 3: r->used_idx = 100; break; /* used ring 0: a "batch" of 65436 */
		case 4:
			r->used_idx = 65535; /* one used entry unrecorded, its batch link out of range */
			r->last_batch_head = 5000;
			break;
		}
		mem = raw_ring_with_region(fd, rfd, &d, kind == 4 ? 1 : 0, 0);
		assert_true(raw_get_u64(fd, VHOST_USER_GET_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
		assert_int_equal(atomic_load(&a->dev.started[0]), 0);
		close(fd);
		wait_connected(a, 0);
		munmap(r, d.mmap_size);
		munmap(mem, RAW_MEM);
		close(rfd);
		app_free(a);
	}
}

/* Client mode: the backend connects to us, and again after we drop it. */
static void test_client_mode(void **state)
{
	struct rev_dev dev = { 0 };
	struct vio_vhu_backend *b;
	struct vio_vhu_backend_opts o = {
		.socket_path = sock_path,
		.client = true,
		.vdev = { .ops = &rev_ops, .dev = &dev },
		.reconnect_max_ms = 100,
	};
	int lfd, cfd;

	snprintf(sock_path, sizeof(sock_path), "/tmp/vio-vhu-test-c%d.sock", (int)getpid());
	lfd = vio_vhu_listen(sock_path, 0600);
	assert_true(lfd >= 0);
	assert_int_equal(vio_vhu_backend_new(&o, &b), 0);
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 100 && !vio_vhu_backend_connected(b); i++)
			assert_int_equal(vio_vhu_backend_run_once(b, 20), 0);
		assert_true(vio_vhu_backend_connected(b));
		cfd = vio_vhu_accept(lfd);
		assert_true(cfd >= 0);
		assert_int_equal(raw_send(cfd, VHOST_USER_GET_QUEUE_NUM, 0, NULL, 0, -1), 0);
		assert_int_equal(vio_vhu_backend_run_once(b, 1000), 0);
		{
			struct vio_vhu_msg m;

			uint32_t req = VHOST_USER_GET_QUEUE_NUM;

			assert_int_equal(vio_vhu_msg_recv_reply(cfd, req, false, &m, "test"), 0);
			assert_int_equal(m.p.u64, NQ);
		}
		close(cfd);
		assert_int_equal(vio_vhu_backend_run_once(b, 1000), 0);
		assert_false(vio_vhu_backend_connected(b));
	}
	vio_vhu_backend_free(b);
	close(lfd);
	unlink(sock_path);
}

/*
 * The backend request channel: refused before it is agreed or when the fd is
 * not a socket; once set, a config change reaches the front-end as a
 * CONFIG_CHANGE message, sent without waiting for any reply.
 */
static void test_backend_channel(void **state)
{
	struct app *a = app_new();
	struct vio_vhu_msg m;
	int fd, sp[2], efd;
	uint64_t pf;

	assert_int_equal(vio_vhu_backend_config_changed(a->b), -ENOTCONN);
	fd = raw_connect(a);
	pf = raw_get_u64(fd, VHOST_USER_GET_PROTOCOL_FEATURES);
	assert_true(pf & VIO_BIT(VHOST_USER_PROTOCOL_F_BACKEND_REQ));
	/* Agreed without the channel: no way to tell the front-end. */
	pf &= ~VIO_BIT(VHOST_USER_PROTOCOL_F_BACKEND_REQ);
	assert_int_equal(raw_acked(fd, VHOST_USER_SET_PROTOCOL_FEATURES, &pf, 8, -1), 0);
	assert_int_equal(vio_vhu_backend_config_changed(a->b), -ENOTSUP);
	pf |= VIO_BIT(VHOST_USER_PROTOCOL_F_BACKEND_REQ);
	assert_int_equal(raw_acked(fd, VHOST_USER_SET_PROTOCOL_FEATURES, &pf, 8, -1), 0);
	assert_int_equal(vio_vhu_backend_config_changed(a->b), -ENOTCONN); /* no fd yet */
	/* Not a socket: refused. */
	efd = eventfd(0, EFD_CLOEXEC);
	assert_true(raw_acked(fd, VHOST_USER_SET_BACKEND_REQ_FD, NULL, 0, efd) != 0);
	close(efd);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	assert_int_equal(raw_acked(fd, VHOST_USER_SET_BACKEND_REQ_FD, NULL, 0, sp[1]), 0);
	close(sp[1]);
	assert_int_equal(vio_vhu_backend_config_changed(a->b), 0);
	assert_int_equal(vio_vhu_set_timeout(sp[0], 2000), 0);
	assert_int_equal(vio_vhu_recv_all(sp[0], &m, VHOST_USER_HDR_SIZE), 0);
	assert_int_equal(m.request, VHOST_USER_BACKEND_CONFIG_CHANGE_MSG);
	assert_int_equal(m.flags, VHOST_USER_VERSION); /* no reply asked for */
	assert_int_equal(m.size, 0);
	/* A front-end that never reads the channel cannot stall the backend. */
	for (int i = 0; i < 100000; i++)
		if (vio_vhu_backend_config_changed(a->b) == -EAGAIN)
			break;
	assert_int_equal(vio_vhu_backend_config_changed(a->b), -EAGAIN);
	close(sp[0]);
	close(fd);
	app_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_loop_split, setup),
		cmocka_unit_test_setup(test_loop_split_plain, setup),
		cmocka_unit_test_setup(test_loop_packed_plain, setup),
		cmocka_unit_test_setup(test_loop_packed, setup),
		cmocka_unit_test_setup(test_fault_needs_reset, setup),
		cmocka_unit_test_setup(test_midsetup_disconnect, setup),
		cmocka_unit_test_setup(test_backend_refusals, setup),
		cmocka_unit_test_setup(test_client_mode, setup),
		cmocka_unit_test_setup(test_inflight_refusals, setup),
		cmocka_unit_test_setup(test_inflight_resubmit_split, setup),
		cmocka_unit_test_setup(test_inflight_corrupt, setup),
		cmocka_unit_test_setup(test_backend_channel, setup),
	};

	if (getenv("VIO_TEST_LOG"))
		vio_log_set(vio_log_stderr, NULL, VIO_LOG_DEBUG);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
