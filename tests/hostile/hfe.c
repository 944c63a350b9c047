/* SPDX-License-Identifier: MIT */
/*
 * The hostile front-end's plumbing: memfd memory, a raw connection with a
 * deadline on every wait, request/reply in the vhost-user framing, the usual
 * set-up steps and hand-written ring entries. It checks replies itself
 * (header, REPLY bit, size) rather than trusting the backend, and it never
 * blocks without a bound.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "hfe.h"
#include "vio/blk.h"

/* The protocol features a well-behaved front-end asks for. */
#define HFE_PROTOCOL                                                                            \
	(VIO_BIT(VHOST_USER_PROTOCOL_F_MQ) | VIO_BIT(VHOST_USER_PROTOCOL_F_REPLY_ACK) |          \
	 VIO_BIT(VHOST_USER_PROTOCOL_F_CONFIG) | VIO_BIT(VHOST_USER_PROTOCOL_F_STATUS) |         \
	 VIO_BIT(VHOST_USER_PROTOCOL_F_RESET_DEVICE) |                                          \
	 VIO_BIT(VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS))

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

int hfe_mem_new(struct hfe_mem *m, uint64_t size, bool seal)
{
	void *p;

	m->host = NULL;
	m->size = size;
	m->fd = memfd_create("vio-hostile", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (m->fd < 0)
		return -errno;
	if (ftruncate(m->fd, (off_t)size) < 0)
		goto fail;
	if (seal && fcntl(m->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0)
		goto fail;
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, m->fd, 0);
	if (p == MAP_FAILED)
		goto fail;
	m->host = p;
	return 0;
fail:
	close_fd(&m->fd);
	return -errno;
}

void hfe_mem_free(struct hfe_mem *m)
{
	if (m->host)
		munmap(m->host, m->size);
	m->host = NULL;
	if (m->fd > 0) /* 0 is stdin, never ours: a zeroed struct owns no fd */
		close_fd(&m->fd);
	m->size = 0;
}

int hfe_connect(struct hfe *h, const char *path)
{
	struct timeval tv = { .tv_sec = HFE_TIMEOUT_MS / 1000,
			      .tv_usec = (HFE_TIMEOUT_MS % 1000) * 1000 };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	memset(h, 0, sizeof(*h));
	h->sock = h->kick_fd = h->call_fd = h->mem.fd = -1;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	h->sock = fd;
	return 0;
}

void hfe_close(struct hfe *h)
{
	close_fd(&h->sock);
	close_fd(&h->kick_fd);
	close_fd(&h->call_fd);
	if (h->mem.host || h->mem.fd >= 0)
		hfe_mem_free(&h->mem);
	h->desc = NULL;
	h->avail = NULL;
	h->used = NULL;
}

int hfe_send_raw(int sock, const void *buf, size_t len, const int *fds, unsigned nfds)
{
	size_t ctl_len = CMSG_SPACE(nfds * sizeof(int));
	char *ctl = nfds ? calloc(1, ctl_len) : NULL;
	size_t sent = 0;
	int r = 0;

	if (nfds && !ctl)
		return -ENOMEM;
	do {
		struct iovec iov = { .iov_base = (char *)buf + sent, .iov_len = len - sent };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t n;

		if (ctl && sent == 0) {
			struct cmsghdr *c;

			mh.msg_control = ctl;
			mh.msg_controllen = ctl_len;
			c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
			memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
		}
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = (errno == EPIPE || errno == ECONNRESET) ? -ECONNRESET :
			    (errno == EAGAIN || errno == EWOULDBLOCK) ? -ETIMEDOUT : -errno;
			break;
		}
		sent += (size_t)n;
	} while (sent < len);
	free(ctl);
	return r;
}

int hfe_send(struct hfe *h, uint32_t req, uint32_t flags, const void *payload, uint32_t size,
	     const int *fds, unsigned nfds)
{
	uint8_t buf[VHOST_USER_HDR_SIZE + VIO_VHU_MAX_PAYLOAD];

	if (h->sock < 0)
		return -ENOTCONN;
	if (size > VIO_VHU_MAX_PAYLOAD)
		return -EINVAL;
	if (!(flags & VHOST_USER_VERSION_MASK))
		flags |= VHOST_USER_VERSION;
	memcpy(buf, &req, 4);
	memcpy(buf + 4, &flags, 4);
	memcpy(buf + 8, &size, 4);
	if (size)
		memcpy(buf + VHOST_USER_HDR_SIZE, payload, size);
	return hfe_send_raw(h->sock, buf, VHOST_USER_HDR_SIZE + size, fds, nfds);
}

/* Keep the first fd that came along in *fd (if asked and none yet); close the rest. */
static void take_fds(struct msghdr *mh, int *fd)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < n; i++) {
			int f;

			memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (fd && *fd < 0)
				*fd = f;
			else
				close(f);
		}
	}
}

/* Exactly len bytes by the deadline; the first fd that comes along goes to *fd (if given). */
static int recv_until(int sock, void *buf, size_t len, int64_t deadline, int *fd)
{
	size_t got = 0;

	while (got < len) {
		union {
			char buf[CMSG_SPACE(VHOST_USER_MAX_FDS * sizeof(int))];
			struct cmsghdr align;
		} ctl;
		struct iovec iov = { .iov_base = (char *)buf + got, .iov_len = len - got };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
				     .msg_controllen = sizeof(ctl.buf) };
		struct pollfd pfd = { .fd = sock, .events = POLLIN };
		int64_t left = deadline - now_ms();
		ssize_t n;

		if (left <= 0)
			return -ETIMEDOUT;
		if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
			return -errno;
		n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n >= 0)
			take_fds(&mh, fd);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				continue;
			return errno == ECONNRESET ? -ECONNRESET : -errno;
		}
		got += (size_t)n;
	}
	return 0;
}

static int recv_reply(struct hfe *h, uint32_t req, bool ack, struct vio_vhu_msg *m, int *fd)
{
	int64_t deadline = now_ms() + HFE_TIMEOUT_MS;
	uint8_t hdr[VHOST_USER_HDR_SIZE];
	int r;

	if (h->sock < 0)
		return -ENOTCONN;
	memset(m, 0, sizeof(*m));
	r = recv_until(h->sock, hdr, sizeof(hdr), deadline, fd);
	if (r)
		return r;
	memcpy(&m->request, hdr, 4);
	memcpy(&m->flags, hdr + 4, 4);
	memcpy(&m->size, hdr + 8, 4);
	if (m->request != req || !(m->flags & VHOST_USER_REPLY_MASK) ||
	    (m->flags & VHOST_USER_VERSION_MASK) != VHOST_USER_VERSION ||
	    m->size > VIO_VHU_MAX_PAYLOAD || (ack && m->size != 8))
		return -EPROTO;
	return recv_until(h->sock, m->p.raw, m->size, deadline, fd);
}

int hfe_recv_reply(struct hfe *h, uint32_t req, bool ack, struct vio_vhu_msg *m)
{
	return recv_reply(h, req, ack, m, NULL);
}

int hfe_call_fd(struct hfe *h, uint32_t req, const void *payload, uint32_t size,
		struct vio_vhu_msg *reply, int *fd)
{
	int r = hfe_send(h, req, 0, payload, size, NULL, 0);

	*fd = -1;
	if (!r)
		r = recv_reply(h, req, false, reply, fd);
	if (r)
		close_fd(&h->sock);
	return r;
}

int hfe_call(struct hfe *h, uint32_t req, const void *payload, uint32_t size, const int *fds,
	     unsigned nfds, struct vio_vhu_msg *reply)
{
	const struct vio_vhu_req_info *ri = vio_vhu_req_info(req);
	bool ack = ri && ri->reply == VIO_VHU_REPLY_ACK &&
		   (h->protocol & VIO_BIT(VHOST_USER_PROTOCOL_F_REPLY_ACK));
	bool owed = ri && ri->reply != VIO_VHU_REPLY_ACK;
	struct vio_vhu_msg m;
	int r;

	r = hfe_send(h, req, ack ? VHOST_USER_NEED_REPLY_MASK : 0, payload, size, fds, nfds);
	if (r)
		goto broken;
	if (!ack && !owed)
		return 0;
	r = hfe_recv_reply(h, req, ack, &m);
	if (r)
		goto broken;
	if (ack)
		return m.p.u64 ? HFE_REFUSED : 0;
	if (reply)
		*reply = m;
	if (ri->reply == VIO_VHU_REPLY_CONFIG && m.size == 0)
		return HFE_REFUSED;
	if ((ri->reply == VIO_VHU_REPLY_U64 || ri->reply == VIO_VHU_REPLY_STATE) && m.size != 8)
		return -EPROTO;
	return 0;
broken:
	/* The stream is out of step (or gone): nothing more is said on it. */
	close_fd(&h->sock);
	return r;
}

int hfe_call_u64(struct hfe *h, uint32_t req, uint64_t v)
{
	return hfe_call(h, req, &v, sizeof(v), NULL, 0, NULL);
}

int hfe_call_state(struct hfe *h, uint32_t req, uint32_t index, uint32_t num)
{
	struct vio_vhu_vring_state s = { .index = index, .num = num };

	return hfe_call(h, req, &s, sizeof(s), NULL, 0, NULL);
}

int hfe_get_u64(struct hfe *h, uint32_t req, uint64_t *v)
{
	struct vio_vhu_msg m = { 0 };
	int r = hfe_call(h, req, NULL, 0, NULL, 0, &m);

	if (r == 0)
		*v = m.p.u64;
	return r;
}

int hfe_wait_hangup(struct hfe *h, int ms)
{
	int64_t deadline = now_ms() + ms;
	char sink[4096];

	if (h->sock < 0)
		return -ENOTCONN;
	for (;;) {
		struct pollfd pfd = { .fd = h->sock, .events = POLLIN };
		int64_t left = deadline - now_ms();
		ssize_t n;

		if (left <= 0)
			return -ETIMEDOUT;
		if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
			return -errno;
		n = recv(h->sock, sink, sizeof(sink), MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n == 0 || (n < 0 && errno == ECONNRESET)) {
			close_fd(&h->sock);
			return 0;
		}
	}
}

int hfe_ping(struct hfe *h)
{
	uint64_t f;
	int r = hfe_get_u64(h, VHOST_USER_GET_FEATURES, &f);

	if (r)
		return r < 0 ? r : -EPROTO;
	return h->offered && f != h->offered ? -EPROTO : 0;
}

int hfe_wait_needs_reset(struct hfe *h, int ms)
{
	int64_t deadline = now_ms() + ms;

	for (;;) {
		uint64_t st;
		int r = hfe_get_u64(h, VHOST_USER_GET_STATUS, &st);

		if (r)
			return r < 0 ? r : -EPROTO;
		if (st & VIRTIO_CONFIG_S_NEEDS_RESET)
			return 1;
		if (now_ms() >= deadline)
			return 0;
		usleep(10000);
	}
}

static int set_status(struct hfe *h, uint8_t st)
{
	return hfe_call_u64(h, VHOST_USER_SET_STATUS, st);
}

int hfe_negotiate(struct hfe *h, uint64_t extra_features)
{
	const uint8_t drv = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER;
	uint64_t pf;
	int r;

	r = hfe_call(h, VHOST_USER_SET_OWNER, NULL, 0, NULL, 0, NULL);
	if (!r)
		r = hfe_get_u64(h, VHOST_USER_GET_FEATURES, &h->offered);
	if (r)
		return r;
	if (!(h->offered & VIO_BIT(VHOST_USER_F_PROTOCOL_FEATURES)))
		return -ENOTSUP;
	r = hfe_get_u64(h, VHOST_USER_GET_PROTOCOL_FEATURES, &pf);
	if (!r)
		r = hfe_call_u64(h, VHOST_USER_SET_PROTOCOL_FEATURES,
				 pf & (HFE_PROTOCOL | h->extra_protocol));
	if (r)
		return r;
	h->protocol = pf & (HFE_PROTOCOL | h->extra_protocol);
	r = set_status(h, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	if (!r)
		r = set_status(h, drv);
	if (r)
		return r;
	h->features = (VIO_BIT(VIRTIO_F_VERSION_1) | extra_features) & h->offered;
	r = hfe_call_u64(h, VHOST_USER_SET_FEATURES,
			 h->features | VIO_BIT(VHOST_USER_F_PROTOCOL_FEATURES));
	if (!r)
		r = set_status(h, drv | VIRTIO_CONFIG_S_FEATURES_OK);
	return r;
}

int hfe_share_mem(struct hfe *h, uint64_t size, bool seal)
{
	struct {
		uint32_t nregions, padding;
		struct vio_vhu_mem_region r;
	} t = { .nregions = 1 };
	int r = hfe_mem_new(&h->mem, size, seal);

	if (r)
		return r;
	t.r = (struct vio_vhu_mem_region){ .guest_phys_addr = 0, .memory_size = size,
					   .userspace_addr = (uintptr_t)h->mem.host };
	return hfe_call(h, VHOST_USER_SET_MEM_TABLE, &t, sizeof(t), &h->mem.fd, 1, NULL);
}

void hfe_ring_layout(struct hfe *h, uint16_t qsize)
{
	h->qsize = qsize;
	h->desc = hfe_ptr(h, HFE_DESC_OFF);
	h->avail = hfe_ptr(h, HFE_AVAIL_OFF);
	h->used = hfe_ptr(h, HFE_USED_OFF);
	memset(h->mem.host, 0, HFE_HDR_OFF);
	h->avail_idx = h->used_idx = 0;
}

int hfe_ring_start(struct hfe *h)
{
	struct vio_vhu_vring_addr a = {
		.index = 0,
		.desc_user_addr = (uintptr_t)h->desc,
		.used_user_addr = (uintptr_t)h->used,
		.avail_user_addr = (uintptr_t)h->avail,
	};
	uint64_t qidx = 0;
	int r;

	h->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	h->call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (h->kick_fd < 0 || h->call_fd < 0)
		return -errno;
	r = hfe_call_state(h, VHOST_USER_SET_VRING_NUM, 0, h->qsize);
	/* A fresh packed ring starts with both wrap counters at 1 (bit 15), as QEMU sends it. */
	if (!r)
		r = hfe_call_state(h, VHOST_USER_SET_VRING_BASE, 0,
				   (h->features & VIO_BIT(VIRTIO_F_RING_PACKED)) ? 0x8000u : 0);
	if (!r)
		r = hfe_call(h, VHOST_USER_SET_VRING_ADDR, &a, sizeof(a), NULL, 0, NULL);
	if (!r)
		r = hfe_call(h, VHOST_USER_SET_VRING_KICK, &qidx, 8, &h->kick_fd, 1, NULL);
	if (!r)
		r = hfe_call(h, VHOST_USER_SET_VRING_CALL, &qidx, 8, &h->call_fd, 1, NULL);
	if (!r)
		r = hfe_call_state(h, VHOST_USER_SET_VRING_ENABLE, 0, 1);
	if (!r)
		r = set_status(h, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
				  VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
	return r;
}

int hfe_setup(struct hfe *h, const char *path, uint64_t extra_features, uint16_t qsize)
{
	int r = hfe_connect(h, path);

	if (!r)
		r = hfe_negotiate(h, extra_features);
	if (!r)
		r = hfe_share_mem(h, HFE_MEM_SIZE, true);
	if (r)
		return r;
	hfe_ring_layout(h, qsize);
	return hfe_ring_start(h);
}

void hfe_desc(struct hfe *h, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
	      uint16_t next)
{
	struct virtq_desc *d = &h->desc[i];

	d->addr = addr;
	d->len = len;
	d->flags = flags;
	d->next = next;
}

void hfe_kick(struct hfe *h)
{
	uint64_t one = 1;

	if (write(h->kick_fd, &one, sizeof(one)) < 0)
		return; /* a saturated counter is a pending kick already */
}

void hfe_post(struct hfe *h, uint16_t head)
{
	h->avail->ring[h->avail_idx % h->qsize] = head;
	h->avail_idx++;
	__atomic_store_n(&h->avail->idx, h->avail_idx, __ATOMIC_RELEASE);
	hfe_kick(h);
}

int hfe_wait_used(struct hfe *h, uint16_t n, int ms)
{
	int64_t deadline = now_ms() + ms;

	for (;;) {
		uint16_t idx = __atomic_load_n(&h->used->idx, __ATOMIC_ACQUIRE);
		struct pollfd pfd = { .fd = h->call_fd, .events = POLLIN };
		uint64_t v;

		if ((uint16_t)(idx - h->used_idx) >= n) {
			h->used_idx += n;
			return 0;
		}
		if (now_ms() >= deadline)
			return -ETIMEDOUT;
		if (poll(&pfd, 1, 2) > 0 && read(h->call_fd, &v, sizeof(v)) < 0)
			continue;
	}
}

uint32_t hfe_used_len(const struct hfe *h, uint16_t back)
{
	uint16_t i = (uint16_t)(h->used_idx - 1 - back);

	return __atomic_load_n(&h->used->ring[i % h->qsize].len, __ATOMIC_RELAXED);
}

int hfe_blk_config(struct hfe *h, struct virtio_blk_config *cfg)
{
	struct vio_vhu_config c = { .offset = 0, .size = VIO_BLK_CONFIG_LEN };
	struct vio_vhu_msg m;
	int r = hfe_call(h, VHOST_USER_GET_CONFIG, &c, VIO_VHU_CONFIG_HDR_SIZE + c.size, NULL, 0,
			 &m);

	if (r == 0 && (m.size != VIO_VHU_CONFIG_HDR_SIZE + c.size || m.p.config.size != c.size))
		r = -EPROTO;
	if (r == 0)
		memcpy(cfg, m.p.config.region, VIO_BLK_CONFIG_LEN);
	return r;
}

int hfe_eventfd(void)
{
	return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

int hfe_blk(struct hfe *h, uint32_t type, uint64_t sector, uint32_t len, uint32_t *used_len)
{
	return hfe_blk_ms(h, type, sector, len, used_len, HFE_TIMEOUT_MS);
}

int hfe_blk_ms(struct hfe *h, uint32_t type, uint64_t sector, uint32_t len, uint32_t *used_len,
	       int ms)
{
	struct virtio_blk_outhdr hdr = { .type = type, .sector = sector };
	uint8_t *status = hfe_ptr(h, HFE_HDR_OFF + 16);
	bool dev_writes = type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;
	int r;

	memcpy(hfe_ptr(h, HFE_HDR_OFF), &hdr, sizeof(hdr));
	*status = 0xee; /* no VIRTIO_BLK_S_* value: shows whether the device wrote it */
	hfe_desc(h, 0, HFE_HDR_OFF, sizeof(hdr), VIRTQ_DESC_F_NEXT, len ? 1 : 2);
	hfe_desc(h, 1, HFE_DATA_OFF, len, VIRTQ_DESC_F_NEXT | (dev_writes ? VIRTQ_DESC_F_WRITE : 0),
		 2);
	hfe_desc(h, 2, HFE_HDR_OFF + 16, 1, VIRTQ_DESC_F_WRITE, 0);
	hfe_post(h, 0);
	r = hfe_wait_used(h, 1, ms);
	if (r)
		return r;
	if (used_len)
		*used_len = hfe_used_len(h, 0);
	return *status;
}
