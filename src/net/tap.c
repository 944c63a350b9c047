/* SPDX-License-Identifier: MIT */
/*
 * A tap interface as a switch port: frames the kernel sends are read (with
 * a virtio-net header, checksum and TSO offloads on) into this port's
 * buffers and forwarded; frames for it are written straight from the
 * sender's buffer with writev, offloads carried in the header. Never
 * blocks (the fd is non-blocking) and never touches the interface's
 * configuration beyond what opening it sets.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/log.h"
#include "net_internal.h"

#define TAP_BURST 16u
#define TAP_BUF (NET_HDR_LEN + VIO_NET_MAX_FRAME)
#define TAP_CAPS (NET_CAP_CSUM | NET_CAP_TSO4 | NET_CAP_TSO6)

struct vio_tap {
	struct vio_switch *sw;
	struct net_port *port;
	int fd;
	bool attached, logged;
	uint8_t *buf; /* TAP_BURST frames of TAP_BUF bytes */
	struct iovec iov[TAP_BURST];
	struct net_frame frames[TAP_BURST];
};

static void log_once(struct vio_tap *t, const char *what, int err)
{
	if (t->logged)
		return;
	t->logged = true;
	vio_warn(t->port->name, "%s: %s (not logged again for this tap)", what, strerror(err));
}

struct tap_put {
	struct vio_tap *t;
	struct net_counters *ctr;
};

static int put_tap(void *opaque, const struct virtio_net_hdr_v1 *hdr, const struct iovec *iov,
		   unsigned niov, uint32_t len, uint32_t patch_off, uint16_t patch)
{
	struct tap_put *tp = opaque;
	struct iovec v[NET_TX_IOV_CAP + 4];
	struct virtio_net_hdr_v1 h = *hdr;
	uint8_t pb[2] = { (uint8_t)(patch >> 8), (uint8_t)patch };
	unsigned n = 1, k;
	ssize_t w;

	h.num_buffers = 0;
	v[0] = (struct iovec){ &h, NET_HDR_LEN };
	if (patch_off < len) {
		/* Before the checksum, the checksum, after it. */
		k = patch_off ? net_iov_slice(iov, niov, 0, patch_off, v + n, NET_TX_IOV_CAP) : 0;
		n += k;
		v[n++] = (struct iovec){ pb, 2 };
		if (len > patch_off + 2)
			n += net_iov_slice(iov, niov, patch_off + 2, len - patch_off - 2, v + n,
					   NET_TX_IOV_CAP + 3 - n);
	} else {
		k = niov < NET_TX_IOV_CAP + 3 ? niov : NET_TX_IOV_CAP + 3;
		memcpy(v + 1, iov, k * sizeof(*iov));
		n += k;
	}
	w = writev(tp->t->fd, v, (int)n);
	if (w < 0) {
		if (errno == EIO)
			return NET_FAIL(VIO_NET_DROP_LINK_DOWN); /* the interface is down */
		if (errno != EAGAIN && errno != ENOBUFS)
			log_once(tp->t, "writing to the tap", errno);
		return NET_FAIL(VIO_NET_DROP_RX_NO_BUFFER);
	}
	net_count(&tp->ctr->rx_packets, 1);
	net_count(&tp->ctr->rx_bytes, len);
	return 0;
}

void net_tap_put(struct vio_tap *t, struct net_counters *ctr, const struct net_frame *f)
{
	struct tap_put tp = { t, ctr };
	unsigned delivered = 0;
	int r;

	if (!net_filter_accept(&t->port->filter, f->mac)) {
		net_drop(ctr, VIO_NET_DROP_RX_FILTERED);
		return;
	}
	/* The tap takes every offload we switched on: headers pass as they came. */
	r = net_offload_deliver(f, TAP_CAPS, put_tap, &tp, &delivered);
	if (r)
		net_drop_rc(ctr, r);
}

/* Read up to a burst of frames from the kernel and forward them. */
static int tap_poll(void *dev, unsigned q)
{
	struct vio_tap *t = dev;
	unsigned nf = 0, n;

	if (q != 0 || !t->attached)
		return -EINVAL;
	for (n = 0; n < TAP_BURST; n++) {
		uint8_t *b = t->buf + (size_t)n * TAP_BUF;
		struct virtio_net_hdr_v1 hdr;
		ssize_t got = read(t->fd, b, TAP_BUF);
		int r;

		if (got < 0) {
			if (errno != EAGAIN && errno != EINTR)
				log_once(t, "reading from the tap", errno);
			break;
		}
		if ((size_t)got < NET_HDR_LEN) {
			net_drop(&t->port->ctr, VIO_NET_DROP_TX_BAD_HEADER);
			continue;
		}
		memcpy(&hdr, b, NET_HDR_LEN);
		t->iov[nf] = (struct iovec){ b + NET_HDR_LEN, (size_t)got - NET_HDR_LEN };
		r = net_frame_parse(&t->frames[nf], &hdr, &t->iov[nf], 1,
				    (uint32_t)got - NET_HDR_LEN, TAP_CAPS);
		if (r)
			net_drop_rc(&t->port->ctr, r);
		else
			nf++;
	}
	net_switch_forward(t->sw, t->port, t->frames, nf);
	return (int)n;
}

static int tap_wait_fd(void *dev, unsigned q)
{
	return q == 0 ? ((struct vio_tap *)dev)->fd : -1;
}

static void tap_attach(void *dev, unsigned q)
{
	struct vio_tap *t = dev;

	if (q == 0) {
		t->attached = true;
		t->port->tap_ready = true;
	}
}

static void tap_detach(void *dev, unsigned q)
{
	struct vio_tap *t = dev;

	if (q == 0) {
		t->port->tap_ready = false;
		t->attached = false;
	}
}

static unsigned tap_max_queues(void *dev)
{
	return 1;
}

static const struct vio_vdev_ops tap_vdev_ops = {
	.max_queues = tap_max_queues,
	.queue_poll = tap_poll,
	.queue_wait_fd = tap_wait_fd,
	.queue_attach = tap_attach,
	.queue_detach = tap_detach,
};

int vio_tap_new(struct vio_switch *sw, const char *ifname, struct vio_tap **out)
{
	struct ifreq ifr = { 0 };
	unsigned offload = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
	int hdr_len = NET_HDR_LEN;
	struct vio_tap *t;
	int r;

	if (!sw || !ifname || !*ifname || strlen(ifname) >= IFNAMSIZ)
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->sw = sw;
	t->fd = -1;
	t->buf = malloc((size_t)TAP_BURST * TAP_BUF);
	if (!t->buf) {
		r = -ENOMEM;
		goto fail;
	}
	t->fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (t->fd < 0) {
		r = -errno;
		goto fail;
	}
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	memcpy(ifr.ifr_name, ifname, strlen(ifname));
	if (ioctl(t->fd, TUNSETIFF, &ifr) < 0 || ioctl(t->fd, TUNSETVNETHDRSZ, &hdr_len) < 0 ||
	    ioctl(t->fd, TUNSETOFFLOAD, offload) < 0) {
		r = -errno;
		goto fail;
	}
	t->port = net_switch_port_add(sw, NET_PORT_TAP, ifname, t);
	if (!t->port) {
		r = -ENOSPC;
		goto fail;
	}
	t->port->rx_caps = TAP_CAPS;
	net_ctrl_reset(t->port, NULL);
	*out = t;
	return 0;
fail:
	if (t->fd >= 0)
		close(t->fd);
	free(t->buf);
	free(t);
	return r;
}

struct vio_vdev vio_tap_vdev(struct vio_tap *t)
{
	return (struct vio_vdev){ .ops = &tap_vdev_ops, .dev = t };
}

unsigned vio_tap_port(const struct vio_tap *t)
{
	return t->port->id;
}

void vio_tap_free(struct vio_tap *t)
{
	if (!t)
		return;
	net_switch_port_del(t->sw, t->port);
	close(t->fd);
	free(t->buf);
	free(t);
}
