/* SPDX-License-Identifier: MIT */
/*
 * Hostile dirty logging (VHOST_F_LOG_ALL, LOG_SHMFD): SET_LOG_BASE with a
 * bitmap that is empty, lies past its file, is not a memory file, comes in
 * the old 8-byte form or without LOG_SHMFD agreed must drop the front-end
 * (it waits for an answer, and any answer would read as success); logging
 * on without a bitmap must hold the queue rather than run it unlogged, and
 * once a bitmap comes the pages the device wrote (data, status byte, used
 * ring) must be marked; a write beyond a too-small bitmap is served, not
 * logged, and said.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cases.h"
#include "vio/blk.h"

#define Q 16
#define LOG_SHMFD VIO_BIT(VHOST_USER_PROTOCOL_F_LOG_SHMFD)
#define PAGE 4096u

/* A sealed bitmap memfd of bytes bytes, mapped into *map. */
static int bitmap(size_t bytes, uint8_t **map)
{
	int fd = memfd_create("hostile-log", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0)
		return -1;
	if (ftruncate(fd, (off_t)bytes) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0) {
		close(fd);
		return -1;
	}
	*map = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (*map == MAP_FAILED) {
		close(fd);
		return -1;
	}
	return fd;
}

static int set_log_base(struct hfe *h, int fd, uint64_t size, uint64_t off)
{
	struct vio_vhu_log d = { .mmap_size = size, .mmap_offset = off };

	return hfe_call(h, VHOST_USER_SET_LOG_BASE, &d, sizeof(d), &fd, 1, NULL);
}

/* Connect with LOG_SHMFD agreed (unless without) and LOG_ALL on; memory shared. */
static int conn(struct hctx *c, struct hfe *h, bool without)
{
	int r = hfe_connect(h, c->sock);

	h->extra_protocol = without ? 0 : LOG_SHMFD;
	if (!r)
		r = hfe_negotiate(h, VIO_BIT(VHOST_F_LOG_ALL));
	if (!r)
		r = hfe_share_mem(h, HFE_MEM_SIZE, true);
	if (r)
		return fail(c, "set-up: %s", r == HFE_REFUSED ? "refused" : strerror(-r));
	if (!(h->features & VIO_BIT(VHOST_F_LOG_ALL)) || (!without && !(h->protocol & LOG_SHMFD)))
		return fail(c, "the device does not offer LOG_ALL and LOG_SHMFD");
	return 0;
}

static bool bit(const uint8_t *map, uint64_t page)
{
	return (__atomic_load_n(&map[page / 8], __ATOMIC_RELAXED) >> (page % 8)) & 1;
}

static int c_bad_log_base(struct hctx *c)
{
	static const struct {
		const char *what;
		uint64_t size, off;
		int kind; /* 0 memfd of 4 KiB, 1 eventfd, 2 old u64 payload, 3 without LOG_SHMFD */
	} bad[] = {
		{ "a bitmap of 0 bytes", 0, 0, 0 },
		{ "a bitmap past the end of its file", 8192, 0, 0 },
		{ "an offset past the end of the file", 64, 8192, 0 },
		{ "a bitmap of 2^63 bytes", 1ull << 63, 0, 0 },
		{ "an eventfd for a bitmap", 64, 0, 1 },
		{ "the old u64 payload", 0, 0, 2 },
		{ "SET_LOG_BASE without LOG_SHMFD agreed", 64, 0, 3 },
	};
	uint8_t *map;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct hfe h;
		int fd = bad[i].kind == 1 ? eventfd(0, EFD_CLOEXEC) : bitmap(PAGE, &map);
		uint64_t u = 64;

		if (fd < 0)
			return fail(c, "cannot make an fd");
		if (conn(c, &h, bad[i].kind == 3)) {
			close(fd);
			hfe_close(&h);
			return -1;
		}
		/* Sent without waiting: the answer must be the hang-up. */
		if (bad[i].kind == 2) {
			hfe_send(&h, VHOST_USER_SET_LOG_BASE, 0, &u, 8, &fd, 1);
		} else {
			struct vio_vhu_log d = { .mmap_size = bad[i].size, .mmap_offset = bad[i].off };

			hfe_send(&h, VHOST_USER_SET_LOG_BASE, 0, &d, sizeof(d), &fd, 1);
		}
		close(fd);
		if (bad[i].kind != 1)
			munmap(map, PAGE);
		if (expect_hangup(c, &h, 3000, bad[i].what)) {
			hfe_close(&h);
			return -1;
		}
		hfe_close(&h);
	}
	note(c, "%zu bad SET_LOG_BASE each dropped the front-end", sizeof(bad) / sizeof(bad[0]));
	return 0;
}

/* Logging agreed before any bitmap: the ring waits; with one, the writes are marked. */
static int c_log_without_base(struct hctx *c)
{
	struct vio_vhu_vring_addr a;
	struct hfe h;
	uint8_t *map;
	int fd, r;

	if (conn(c, &h, false))
		goto out;
	hfe_ring_layout(&h, Q);
	if (hfe_ring_start(&h)) {
		fail(c, "ring set-up refused");
		goto out;
	}
	/* The used ring logged at its guest address (VHOST_VRING_F_LOG). */
	a = (struct vio_vhu_vring_addr){ .index = 0, .flags = 1u << VHOST_VRING_F_LOG,
					 .desc_user_addr = (uintptr_t)h.desc,
					 .used_user_addr = (uintptr_t)h.used,
					 .avail_user_addr = (uintptr_t)h.avail,
					 .log_guest_addr = HFE_USED_OFF };
	if (hfe_call(&h, VHOST_USER_SET_VRING_ADDR, &a, sizeof(a), NULL, 0, NULL)) {
		fail(c, "SET_VRING_ADDR with VHOST_VRING_F_LOG refused");
		goto out;
	}
	r = hfe_blk_ms(&h, VIRTIO_BLK_T_IN, 0, PAGE, NULL, 300);
	if (r != -ETIMEDOUT) {
		fail(c, "a read was served while logging was on and no bitmap set (%d)", r);
		goto out;
	}
	fd = bitmap(HFE_MEM_SIZE / PAGE / 8, &map);
	if (fd < 0) {
		fail(c, "cannot make a bitmap");
		goto out;
	}
	r = set_log_base(&h, fd, HFE_MEM_SIZE / PAGE / 8, 0);
	close(fd);
	if (r) {
		fail(c, "a well-formed SET_LOG_BASE was refused: %s",
		     r == HFE_REFUSED ? "refused" : strerror(-r));
	} else if (hfe_wait_used(&h, 1, 2000)) {
		fail(c, "the held read was not served once the bitmap came");
	} else if (!bit(map, HFE_DATA_OFF / PAGE) || !bit(map, (HFE_HDR_OFF + 16) / PAGE) ||
		   !bit(map, HFE_USED_OFF / PAGE)) {
		fail(c, "pages not marked: data %d, status %d, used ring %d",
		     bit(map, HFE_DATA_OFF / PAGE), bit(map, (HFE_HDR_OFF + 16) / PAGE),
		     bit(map, HFE_USED_OFF / PAGE));
	} else if (bit(map, HFE_DESC_OFF / PAGE) || bit(map, HFE_TABLE_OFF / PAGE)) {
		fail(c, "pages the device never wrote are marked (descriptors, tables)");
	} else {
		note(c, "held without a bitmap; then data, status and used ring pages marked");
	}
	munmap(map, HFE_MEM_SIZE / PAGE / 8);
out:
	hfe_close(&h);
	return c->why[0] ? -1 : 0;
}

/* A bitmap too small for guest memory: the request is served, the write beyond it said. */
static int c_log_beyond_bitmap(struct hctx *c)
{
	struct hfe h;
	uint8_t *map;
	int fd, r;

	if (conn(c, &h, false))
		goto out;
	fd = bitmap(8, &map); /* 64 pages: the data at HFE_DATA_OFF lies beyond */
	if (fd < 0) {
		fail(c, "cannot make a bitmap");
		goto out;
	}
	r = set_log_base(&h, fd, 8, 0);
	close(fd);
	if (r) {
		fail(c, "SET_LOG_BASE of 8 bytes refused");
		munmap(map, 8);
		goto out;
	}
	hfe_ring_layout(&h, Q);
	if (hfe_ring_start(&h)) {
		fail(c, "ring set-up refused");
	} else if ((r = hfe_blk(&h, VIRTIO_BLK_T_IN, 0, PAGE, NULL)) != VIRTIO_BLK_S_OK) {
		fail(c, "the read was not served (%d)", r);
	} else if (!expect_logged(c, "beyond the")) {
		note(c, "served; the write beyond the bitmap was reported");
	}
	munmap(map, 8);
out:
	hfe_close(&h);
	return c->why[0] ? -1 : 0;
}

const struct hcase log_cases[] = {
	{ "log-base-refused", c_bad_log_base },
	{ "log-without-base", c_log_without_base },
	{ "log-beyond-bitmap", c_log_beyond_bitmap },
	{ NULL, NULL },
};
