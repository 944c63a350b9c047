/* SPDX-License-Identifier: MIT */
/*
 * The smallest vio backend: a RAM disk served over vhost-user on one thread.
 * It sleeps in poll(2) on the socket and on every running queue's fds, and
 * lets vio_queue_service_run do the queue's poll / re-arm / re-check cycle.
 * viod does the same job with data-plane threads; this shows the API only.
 *
 *   ram_backend /tmp/ram.sock [SIZE_MIB]
 *   then point QEMU (-device vhost-user-blk-pci) or vio-bench blk at it.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vio/vio.h"

#define NQ 2

struct app {
	struct vio_vdev vdev;
	struct vio_queue_service svc[NQ];
	bool running[NQ];
};

static int start_queue(void *opaque, unsigned q, struct vio_virtq *vq, int kick_fd)
{
	struct app *a = opaque;

	vio_queue_service_init(&a->svc[q], a->vdev, q, vq, kick_fd);
	a->running[q] = true;
	return 0;
}

static void stop_queue(void *opaque, unsigned q)
{
	((struct app *)opaque)->running[q] = false;
}

int main(int argc, char **argv)
{
	struct app a = { 0 };
	struct vio_blk *blk;
	struct vio_vhu_backend *be;
	unsigned long mib = argc > 2 ? strtoul(argv[2], NULL, 10) : 64;

	if (argc < 2 || !strcmp(argv[1], "--help") || !mib) {
		fprintf(stderr, "usage: %s SOCKET [SIZE_MIB]\n", argv[0]);
		return 2;
	}
	vio_log_set(vio_log_stderr, "ram_backend", VIO_LOG_INFO);
	if (vio_blk_new(&(struct vio_blk_opts){ .ram_size = mib << 20, .queues = NQ }, &blk))
		return 1;
	a.vdev = vio_blk_vdev(blk);
	struct vio_vhu_backend_opts o = {
		.socket_path = argv[1], .vdev = a.vdev, .hooks_opaque = &a,
		.hooks = { .start_queue = start_queue, .stop_queue = stop_queue },
	};
	if (vio_vhu_backend_new(&o, &be)) {
		fprintf(stderr, "cannot listen on %s\n", argv[1]);
		return 1;
	}
	printf("serving a %lu MiB RAM disk on %s\n", mib, argv[1]);
	for (;;) {
		struct pollfd p[1 + 2 * NQ] = { { .fd = vio_vhu_backend_fd(be), .events = POLLIN } };
		unsigned n = 1;
		int timeout = -1;

		for (unsigned q = 0; q < NQ; q++) {
			int fds[2];
			unsigned k = a.running[q] ? vio_queue_service_fds(&a.svc[q], fds) : 2;

			if (a.running[q] && k == 0)
				timeout = 1; /* a driver that never kicks: look every millisecond */
			for (unsigned i = 0; i < 2; i++)
				p[n++] = (struct pollfd){ .fd = a.running[q] && i < k ? fds[i] : -1,
							  .events = POLLIN };
		}
		if (poll(p, n, timeout) < 0)
			break;
		if (p[0].revents && vio_vhu_backend_dispatch(be))
			break;
		for (unsigned q = 0; q < NQ; q++) {
			/* Serve until idle and re-armed; a broken queue reports -EIO and is dropped. */
			while (a.running[q]) {
				int r = vio_queue_service_run(&a.svc[q], 64, NULL);

				if (r < 0)
					a.running[q] = false;
				if (r != VIO_SERVICE_BUSY)
					break;
			}
		}
	}
	vio_vhu_backend_free(be);
	vio_blk_free(blk);
	return 0;
}
