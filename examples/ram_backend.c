/* SPDX-License-Identifier: MIT */
/*
 * The smallest vio backend: a RAM disk served over vhost-user on one thread.
 * It waits on the socket and on every running queue's kick eventfd with
 * poll(2), and polls the device when anything fires. viod does the same job
 * with data-plane threads and adaptive polling; this shows the API only.
 *
 *   ram_backend /tmp/ram.sock [SIZE_MIB]
 *   then point QEMU (-device vhost-user-blk-pci) or vio-bench blk at it.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vio/vio.h"

#define NQ 1

struct app {
	struct vio_vdev vdev;
	int kick_fd[NQ];
	struct vio_virtq *vq[NQ];
};

static int start_queue(void *opaque, unsigned q, struct vio_virtq *vq, int kick_fd)
{
	struct app *a = opaque;

	a->vq[q] = vq;
	a->kick_fd[q] = kick_fd;
	return 0;
}

static void stop_queue(void *opaque, unsigned q)
{
	struct app *a = opaque;

	a->vq[q] = NULL;
	a->kick_fd[q] = -1;
}

int main(int argc, char **argv)
{
	struct app a = {.kick_fd = {-1}};
	struct vio_blk *blk;
	struct vio_vhu_backend *be;
	unsigned long mib = argc > 2 ? strtoul(argv[2], NULL, 10) : 64;

	if (argc < 2 || !strcmp(argv[1], "--help") || !mib) {
		fprintf(stderr, "usage: %s SOCKET [SIZE_MIB]\n", argv[0]);
		return 2;
	}
	vio_log_set(vio_log_stderr, NULL, VIO_LOG_INFO);
	if (vio_blk_new(&(struct vio_blk_opts){.ram_size = mib << 20, .queues = NQ}, &blk))
		return 1;
	a.vdev = vio_blk_vdev(blk);
	struct vio_vhu_backend_opts o = {
		.socket_path = argv[1], .vdev = a.vdev, .hooks_opaque = &a,
		.hooks = {.start_queue = start_queue, .stop_queue = stop_queue},
	};
	if (vio_vhu_backend_new(&o, &be)) {
		fprintf(stderr, "cannot listen on %s\n", argv[1]);
		return 1;
	}
	printf("serving a %lu MiB RAM disk on %s\n", mib, argv[1]);
	for (;;) {
		struct pollfd p[1 + NQ] = {{.fd = vio_vhu_backend_fd(be), .events = POLLIN}};

		for (unsigned q = 0; q < NQ; q++)
			p[1 + q] = (struct pollfd){.fd = a.vq[q] ? a.kick_fd[q] : -1, .events = POLLIN};
		if (poll(p, 1 + NQ, 100) < 0)
			break;
		if (p[0].revents && vio_vhu_backend_dispatch(be))
			break;
		for (unsigned q = 0; q < NQ; q++) {
			uint64_t v;

			if (!a.vq[q])
				continue;
			if (p[1 + q].revents && read(a.kick_fd[q], &v, sizeof(v)) < 0)
				continue;
			/*
			 * RAM requests complete inline: poll until the queue is empty and
			 * notifications are re-armed with nothing new available.
			 */
			do {
				while (a.vdev.ops->queue_poll(a.vdev.dev, q) > 0)
					;
			} while (vio_virtq_device_enable_notify(a.vq[q]));
		}
	}
	vio_vhu_backend_free(be);
	vio_blk_free(blk);
	return 0;
}
