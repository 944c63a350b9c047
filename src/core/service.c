/* SPDX-License-Identifier: MIT */
/*
 * The queue service helper: one device queue's poll / re-arm / re-check /
 * sleep cycle for an application's own loop. Uses only the device's vdev
 * ops and the queue's public calls; knows no transport. Never blocks except
 * in vio_queue_service_wait, and never reads an fd poll did not find ready.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <unistd.h>

#include "vio/service.h"

void vio_queue_service_init(struct vio_queue_service *s, struct vio_vdev vdev, unsigned q,
			    struct vio_virtq *vq, int kick_fd)
{
	const struct vio_vdev_ops *ops = vdev.ops;

	*s = (struct vio_queue_service){ .vdev = vdev, .q = q, .vq = vq, .kick_fd = kick_fd };
	s->wait_fd = ops->queue_wait_fd ? ops->queue_wait_fd(vdev.dev, q) : -1;
	/* The driver starts with notifications on: it kicks until we say otherwise. */
	s->armed = true;
}

unsigned vio_queue_service_fds(const struct vio_queue_service *s, int fds[2])
{
	unsigned n = 0;

	if (s->kick_fd >= 0)
		fds[n++] = s->kick_fd;
	if (s->wait_fd >= 0)
		fds[n++] = s->wait_fd;
	return n;
}

/* Reset the eventfds that fired; only those poll reports ready, so a read never blocks. */
static void drain(const struct vio_queue_service *s)
{
	struct pollfd p[2];
	int fds[2];
	unsigned n = vio_queue_service_fds(s, fds);

	for (unsigned i = 0; i < n; i++)
		p[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
	if (n == 0 || poll(p, n, 0) <= 0)
		return;
	for (unsigned i = 0; i < n; i++) {
		uint64_t v;

		if ((p[i].revents & POLLIN) && read(p[i].fd, &v, sizeof(v)) < 0)
			continue; /* raced with another reader: nothing to reset */
	}
}

int vio_queue_service_run(struct vio_queue_service *s, unsigned budget, unsigned *handled)
{
	unsigned done = 0, bursts = 0;
	int r = VIO_SERVICE_IDLE;

	drain(s);
	for (;;) {
		int got;

		if (s->armed) {
			/* We are about to poll: kicks would only cost the driver an exit. */
			if (vio_virtq_device_disable_notify(s->vq) < 0) {
				r = -EIO;
				break;
			}
			s->armed = false;
		}
		got = s->vdev.ops->queue_poll(s->vdev.dev, s->q);
		if (got < 0 || vio_virtq_is_broken(s->vq)) {
			r = -EIO;
			break;
		}
		if (got > 0) {
			done += (unsigned)got;
			if (budget && ++bursts >= budget) {
				r = VIO_SERVICE_BUSY;
				break;
			}
			continue;
		}
		/*
		 * Idle: ask for kicks, then look again. A request published
		 * before the driver saw our request would otherwise sit there
		 * unkicked while we sleep.
		 */
		s->armed = true;
		if (!vio_virtq_device_enable_notify(s->vq)) {
			r = vio_virtq_is_broken(s->vq) ? -EIO : VIO_SERVICE_IDLE;
			break;
		}
		/* Requests wait in the ring but every slot is taken: completions wake us. */
		if (s->vdev.ops->queue_full && s->vdev.ops->queue_full(s->vdev.dev, s->q))
			break;
	}
	if (handled)
		*handled = done;
	return r;
}

int vio_queue_service_wait(const struct vio_queue_service *s, int timeout_ms)
{
	struct pollfd p[2];
	int fds[2];
	unsigned n = vio_queue_service_fds(s, fds);

	if (n == 0 && (timeout_ms < 0 || timeout_ms > 1))
		timeout_ms = 1;
	for (unsigned i = 0; i < n; i++)
		p[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
	if (poll(p, n, timeout_ms) < 0 && errno != EINTR)
		return -errno;
	return 0;
}
