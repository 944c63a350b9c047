/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: a vhost-user backend (src/vhost_user: the codec, every
 * request handler, the memory table, the queue lifecycle) serving a RAM
 * virtio-blk device to a front-end that sends anything. Each input is a
 * fresh backend on a unix socket in a private directory and one connected
 * front-end socket; then a stream of operations:
 *  - a message: request id (known ids mostly, any id now and then), flags,
 *    payload (any size, the discard path's large ones included), and up to
 *    ten fds from a fixed pool: two 64 KiB memfds (one sealed against
 *    resizing, one not) and a sealed 4 KiB one (guest memory, inflight
 *    region), two eventfds, a pipe (an fd that is no memory file and no
 *    eventfd), a socket (for the backend request channel). No SIGBUS guard
 *    is installed: nothing here truncates guest memory, so a SIGBUS is a
 *    bug the fuzzer must see;
 *  - a write into the guest memory (rings and buffers for the device, or
 *    an inflight region the backend was given);
 *  - a config-change notice on the backend's request channel (a socket
 *    from the pool, if the front-end handed it over);
 *  - a poll of every queue the backend handed to the application, as a
 *    poller thread would (here in the same thread, so nothing sleeps);
 *  - a message cut short and the socket closed; a reconnect.
 * After each message: the front-end got exactly the replies it is owed
 * (or the connection was dropped), each well formed; the queues the hooks
 * hold match the backend's count. At the end of each input, with the
 * backend freed: no queue running, and not one fd or mapping more than
 * before the input.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz.h"
#include "vhost_user/msg.h"
#include "vhost_user/socket.h"
#include "vio/blk.h"
#include "vio/vhost_user.h"

#define GUEST_LEN (64u << 10)
#define SMALL_LEN 4096u
#define NPOOL 7
#define NQUEUES 2
#define FZ_OPS 128

static char sock_path[64];
static char sock_dir[32];
static int pool[NPOOL];        /* memfd A, memfd B, small memfd, eventfd x2, pipe, socket */
static uint8_t *guest[3];      /* our view of the three memfds */
static const size_t guest_len[3] = { GUEST_LEN, GUEST_LEN, SMALL_LEN };
static int channel;            /* our end of the socket the backend may take as its channel */

struct run {
	struct vio_vhu_backend *b;
	struct vio_blk *blk;
	struct vio_vdev vdev;
	int fd;            /* the front-end's socket, -1 when closed */
	unsigned running;  /* bit per queue the hooks hold */
	unsigned faults;
};

static int h_start(void *opaque, unsigned q, struct vio_virtq *vq, int kick_fd)
{
	struct run *r = opaque;

	FZ_CHECK(q < NQUEUES && vq, "start_queue(%u)", q);
	FZ_CHECK(!(r->running & (1u << q)), "queue %u started twice", q);
	r->running |= 1u << q;
	return 0;
}

static void h_stop(void *opaque, unsigned q)
{
	struct run *r = opaque;

	FZ_CHECK(q < NQUEUES && (r->running & (1u << q)), "stop_queue(%u) not running", q);
	r->running &= ~(1u << q);
}

static void h_fault(void *opaque, unsigned q, enum vio_virtq_fault why)
{
	((struct run *)opaque)->faults++;
}

static void cleanup(void)
{
	unlink(sock_path);
	rmdir(sock_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int p[2], sp[2];

	fz_log_init();
	snprintf(sock_dir, sizeof(sock_dir), "/tmp/vio-fuzz-XXXXXX");
	if (!mkdtemp(sock_dir))
		abort();
	snprintf(sock_path, sizeof(sock_path), "%s/s", sock_dir);
	atexit(cleanup);
	for (int i = 0; i < 3; i++) {
		pool[i] = memfd_create(i < 2 ? "fz-guest" : "fz-small",
				       MFD_CLOEXEC | MFD_ALLOW_SEALING);
		if (pool[i] < 0 || ftruncate(pool[i], (off_t)guest_len[i]))
			abort();
	}
	/* B and the small one sealed against resizing as QEMU seals its memfds, A not. */
	if (fcntl(pool[1], F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) ||
	    fcntl(pool[2], F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW))
		abort();
	for (int i = 0; i < 3; i++) {
		guest[i] = mmap(NULL, guest_len[i], PROT_READ | PROT_WRITE, MAP_SHARED, pool[i], 0);
		if (guest[i] == MAP_FAILED)
			abort();
	}
	pool[3] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	pool[4] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (pool[3] < 0 || pool[4] < 0 || pipe2(p, O_CLOEXEC))
		abort();
	pool[5] = p[0];
	close(p[1]);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sp))
		abort();
	pool[6] = sp[0];
	channel = sp[1];
	return 0;
}

/* Mappings of the pool's memfds: ours (two) plus whatever the backend still holds. */
static int count_guest_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int n = 0;

	if (!f)
		abort();
	while (fgets(line, sizeof(line), f))
		n += strstr(line, "memfd:fz-") != NULL;
	fclose(f);
	return n;
}

/* ---- the front-end side ---- */

static void connect_frontend(struct run *r)
{
	r->fd = vio_vhu_connect(sock_path);
	FZ_CHECK(r->fd >= 0, "connect: %d", r->fd);
	FZ_CHECK(vio_vhu_backend_dispatch(r->b) == 0, "accept");
	FZ_CHECK(vio_vhu_backend_connected(r->b), "not connected after accept");
}

static void send_raw(struct run *r, const void *buf, size_t len, const int *fds, unsigned nfds)
{
	union {
		char buf[CMSG_SPACE(16 * sizeof(int))];
		struct cmsghdr align;
	} ctrl;
	struct iovec iov = { (void *)buf, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (nfds) {
		struct cmsghdr *c;

		memset(&ctrl, 0, sizeof(ctrl));
		mh.msg_control = ctrl.buf;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
	}
	/* The socket buffer holds any message we build (<= 64 KiB + header): one send. */
	n = sendmsg(r->fd, &mh, MSG_NOSIGNAL);
	FZ_CHECK(n == (ssize_t)len, "sendmsg %zd of %zu: %s", n, len, strerror(errno));
}

/* Read every reply waiting; check each against the request it answers. Returns how many. */
static unsigned read_replies(struct run *r, uint32_t request)
{
	static uint8_t buf[1 << 17];
	size_t got = 0, off = 0;
	unsigned n = 0;

	for (;;) {
		ssize_t k = recv(r->fd, buf + got, sizeof(buf) - got, MSG_DONTWAIT);

		if (k <= 0)
			break;
		got += (size_t)k;
	}
	while (off < got) {
		uint32_t req, flags, size;

		FZ_CHECK(got - off >= VHOST_USER_HDR_SIZE, "a reply cut short");
		memcpy(&req, buf + off, 4);
		memcpy(&flags, buf + off + 4, 4);
		memcpy(&size, buf + off + 8, 4);
		FZ_CHECK(req == request, "reply for request %u to request %u", req, request);
		FZ_CHECK(flags == (VHOST_USER_VERSION | VHOST_USER_REPLY_MASK), "reply flags %#x",
			 flags);
		FZ_CHECK(size <= VIO_VHU_MAX_PAYLOAD && got - off - VHOST_USER_HDR_SIZE >= size,
			 "reply size %u", size);
		off += VHOST_USER_HDR_SIZE + size;
		n++;
	}
	return n;
}

/* The ids vio knows, and a few it does not. */
static const uint8_t ids[] = {
	1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23,
	24, 25, 31, 32, 34, 35, 36, 37, 38, 39, 40,
	/* the set-up messages again, so sequences of them come up often */
	5, 8, 9, 10, 12, 13, 18, 37, 39, 31, 32,
	0, 26, 33, 41, 63,
};

static void message(struct run *r, struct fz *in)
{
	static uint8_t msg[VHOST_USER_HDR_SIZE + 65536];
	uint8_t sel = fz_u8(in), fl = fz_u8(in), sb = fz_u8(in), fb = fz_u8(in);
	uint32_t request = sel < 0xf0 ? ids[sel % sizeof(ids)] : fz_u32(in);
	uint32_t flags = fl & 2 ? fz_u32(in)
			       : VHOST_USER_VERSION | (fl & 1 ? VHOST_USER_NEED_REPLY_MASK : 0);
	uint32_t size = sb < 0xf8 ? sb : fz_u16(in);
	unsigned nfds = (fb & 15) % 11; /* then the first fd's pool index in the high bits */
	int fds[16];
	const struct vio_vhu_req_info *ri = vio_vhu_req_info(request);
	bool owed;
	unsigned replies;

	memcpy(msg, &request, 4);
	memcpy(msg + 4, &flags, 4);
	memcpy(msg + 8, &size, 4);
	fz_bytes(in, msg + VHOST_USER_HDR_SIZE, size);
	for (unsigned i = 0; i < nfds; i++)
		fds[i] = pool[(i == 0 ? fb >> 4 : fz_u8(in)) % NPOOL];
	send_raw(r, msg, VHOST_USER_HDR_SIZE + size, fds, nfds);
	FZ_CHECK(vio_vhu_backend_dispatch(r->b) == 0, "dispatch failed");
	replies = read_replies(r, request);
	if (!vio_vhu_backend_connected(r->b)) {
		/* Dropped: the front-end sees EOF, never a half answer. */
		FZ_CHECK(replies <= 1, "%u replies, then dropped", replies);
		FZ_CHECK(r->running == 0, "queues still running after the drop");
		close(r->fd);
		connect_frontend(r);
		return;
	}
	owed = (flags & VHOST_USER_NEED_REPLY_MASK) || (ri && ri->reply != VIO_VHU_REPLY_ACK);
	FZ_CHECK(replies == (owed ? 1u : 0u), "request %u flags %#x: %u replies", request, flags,
		 replies);
	FZ_CHECK((unsigned)__builtin_popcount(r->running) == vio_vhu_backend_running_queues(r->b),
		 "hooks hold %#x, backend says %u running", r->running,
		 vio_vhu_backend_running_queues(r->b));
}

/* A message cut off mid-way, then the front-end gone. */
static void cut_and_close(struct run *r, struct fz *in)
{
	uint8_t part[VHOST_USER_HDR_SIZE + 16];
	size_t len = 1 + fz_u8(in) % (sizeof(part) - 1);

	fz_bytes(in, part, len);
	part[4] = VHOST_USER_VERSION;
	if (len >= VHOST_USER_HDR_SIZE) {
		/* A whole header: promise more payload than follows. */
		uint32_t promised = (uint32_t)(len - VHOST_USER_HDR_SIZE) + 1 + fz_u8(in);

		memcpy(part + 8, &promised, 4);
	}
	send_raw(r, part, len, NULL, 0);
	shutdown(r->fd, SHUT_WR);
	FZ_CHECK(vio_vhu_backend_dispatch(r->b) == 0, "dispatch failed");
	FZ_CHECK(!vio_vhu_backend_connected(r->b), "still connected after EOF mid-message");
	FZ_CHECK(r->running == 0, "queues still running after the drop");
	close(r->fd);
	connect_frontend(r);
}

/* What a poller thread does with each queue the backend handed out. */
static void poll_queues(struct run *r)
{
	for (unsigned q = 0; q < NQUEUES; q++) {
		if (!(r->running & (1u << q)))
			continue;
		/* Negative (the queue broke) is a legal answer; the poller stops polling it. */
		r->vdev.ops->queue_poll(r->vdev.dev, q);
	}
	(void)vio_vhu_backend_status(r->b);
}

static void guest_write(struct fz *in)
{
	uint8_t which = fz_u8(in) % 3;
	size_t off = fz_u16(in) % guest_len[which], len = fz_u8(in);

	if (len > guest_len[which] - off)
		len = guest_len[which] - off;
	fz_bytes(in, guest[which] + off, len);
}

/* Whatever the backend sent on its request channel (if it took ours): read and dropped. */
static void drain_channel(void)
{
	uint8_t buf[4096];

	while (recv(channel, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
}

/* The device's config changed: a CONFIG_CHANGE on the channel, sent without waiting. */
static void config_changed(struct run *r)
{
	int rc = vio_vhu_backend_config_changed(r->b);

	FZ_CHECK(rc == 0 || rc == -ENOTCONN || rc == -ENOTSUP || rc == -EAGAIN,
		 "config_changed: %d", rc);
	drain_channel();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz in = { data, size };
	struct vio_blk_opts bo = { .name = "fuzz blk", .ram_size = 64 << 10, .queues = NQUEUES };
	struct vio_vhu_backend_opts o = {
		.socket_path = sock_path,
		.name = "fuzz backend",
		.hooks = { .start_queue = h_start, .stop_queue = h_stop, .queue_fault = h_fault },
		.msg_timeout_ms = 200, /* every message arrives whole: only a bug waits */
		.access_platform = true, /* IOTLB messages reach their handler */
		.iotlb_max = 16,         /* and a few updates reach the bound */
	};
	struct run r = { .fd = -1 };
	int fds0 = fz_count_fds(), maps0 = count_guest_maps();

	for (int i = 0; i < 3; i++)
		memset(guest[i], 0, guest_len[i]);
	drain_channel();
	FZ_CHECK(vio_blk_new(&bo, &r.blk) == 0, "vio_blk_new");
	r.vdev = vio_blk_vdev(r.blk);
	o.vdev = r.vdev;
	o.hooks_opaque = &r;
	FZ_CHECK(vio_vhu_backend_new(&o, &r.b) == 0, "vio_vhu_backend_new");
	connect_frontend(&r);

	for (unsigned ops = 0; ops < FZ_OPS && !fz_empty(&in); ops++) {
		switch (fz_u8(&in) % 10) {
		case 0: guest_write(&in); break;
		case 1: poll_queues(&r); break;
		case 2:
			switch (fz_u8(&in) % 4) {
			case 0: cut_and_close(&r, &in); break;
			case 1: config_changed(&r); break;
			default: message(&r, &in); poll_queues(&r); break;
			}
			break;
		default: message(&r, &in); poll_queues(&r); break;
		}
	}

	vio_vhu_backend_free(r.b);
	FZ_CHECK(r.running == 0, "queues %#x still running after free", r.running);
	close(r.fd);
	vio_blk_free(r.blk);
	FZ_CHECK(fz_count_fds() == fds0, "%d fds after the input, %d before", fz_count_fds(), fds0);
	FZ_CHECK(count_guest_maps() == maps0, "%d guest mappings after the input, %d before",
		 count_guest_maps(), maps0);
	return 0;
}
