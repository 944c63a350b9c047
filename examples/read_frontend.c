/* SPDX-License-Identifier: MIT */
/*
 * The smallest vio frontend: connects to any vhost-user-blk backend (viod,
 * qemu-storage-daemon, SPDK), prints the disk's capacity and serial, and
 * dumps the first 64 bytes of sector 0. No VM: the frontend's memfd memory
 * plays the guest's RAM.
 *
 *   read_frontend /tmp/ram.sock
 */
#include <stdio.h>
#include <string.h>

#include "vio/vio.h"

int main(int argc, char **argv)
{
	struct vio_vhu_frontend *f;
	struct vio_blk_client *c;
	struct virtio_blk_config cfg = {0};
	const struct vio_drv_ctx *ctx;
	uint32_t len;
	int r;

	if (argc != 2 || !strcmp(argv[1], "--help")) {
		fprintf(stderr, "usage: %s SOCKET\n", argv[0]);
		return 2;
	}
	struct vio_vhu_frontend_opts o = {
		.socket_path = argv[1], .mem_size = 4 << 20, .nqueues = 1,
		.features = 1ull << VIRTIO_BLK_F_BLK_SIZE,
	};
	r = vio_vhu_frontend_connect(&o, &f);
	if (r) {
		fprintf(stderr, "%s: %s\n", argv[1], strerror(-r));
		return 1;
	}
	vio_vhu_frontend_get_config(f, 0, &cfg, sizeof(cfg.capacity));
	ctx = vio_vhu_frontend_queue(f, 0);
	size_t area_len = vio_blk_client_area_size(ctx, 1);
	void *area = vio_vhu_frontend_alloc(f, area_len, 64);
	char *buf = vio_vhu_frontend_alloc(f, 4096, 4096);

	if (!area || !buf || vio_blk_client_new(ctx, 1, area, area_len, &c)) {
		fprintf(stderr, "out of shared memory\n");
		vio_vhu_frontend_close(f);
		return 1;
	}
	printf("capacity: %llu sectors (%llu MiB)\n", (unsigned long long)cfg.capacity,
	       (unsigned long long)cfg.capacity >> 11);

	struct iovec iov = {buf, VIRTIO_BLK_ID_BYTES};
	struct vio_blk_client_req id = {.type = VIRTIO_BLK_T_GET_ID, .iov = &iov, .niov = 1};

	memset(buf, 0, 4096);
	if (vio_blk_client_sync(c, 0, &id, NULL, NULL, 2000, &len) == VIRTIO_BLK_S_OK)
		printf("serial: %.20s\n", buf);

	iov.iov_len = 512;
	struct vio_blk_client_req rd = {.type = VIRTIO_BLK_T_IN, .sector = 0, .iov = &iov, .niov = 1};

	r = vio_blk_client_sync(c, 0, &rd, NULL, NULL, 2000, &len);
	if (r != VIRTIO_BLK_S_OK) {
		fprintf(stderr, "read of sector 0 failed: status %d\n", r);
	} else {
		printf("sector 0:");
		for (int i = 0; i < 64; i++)
			printf("%s%02x", i % 16 ? " " : "\n  ", (unsigned char)buf[i]);
		printf("\n");
	}
	vio_blk_client_free(c);
	vio_vhu_frontend_disconnect(f);
	vio_vhu_frontend_close(f);
	return r == VIRTIO_BLK_S_OK ? 0 : 1;
}
