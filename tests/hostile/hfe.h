/* SPDX-License-Identifier: MIT */
/*
 * A hostile vhost-user front-end: a raw connection that can say anything,
 * its memfd memory and one split ring it lays out by hand. It uses the
 * project's codec for well-formed messages and writes raw bytes for
 * malformed ones; it never trusts the backend to answer (every wait is
 * bounded) and never follows a value the backend wrote. One thread per hfe.
 */
#ifndef VIO_HOSTILE_HFE_H
#define VIO_HOSTILE_HFE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vhost_user/msg.h"
#include "vio/virtio_spec.h"

/* Longest wait for any one reply; a backend that does not answer by then has hung. */
#define HFE_TIMEOUT_MS 2000

/* Where things live in region 0 (guest address 0): rings, indirect tables, data. */
#define HFE_DESC_OFF 0x0u
#define HFE_AVAIL_OFF 0x10000u
#define HFE_USED_OFF 0x20000u
#define HFE_TABLE_OFF 0x30000u /* indirect tables, 64 KiB */
#define HFE_HDR_OFF 0x40000u   /* a request header, then its status byte at +16 */
#define HFE_DATA_OFF 0x41000u  /* data buffers */
#define HFE_MEM_SIZE (2u << 20)

/* hfe_call's answer when the backend refused (non-zero ack, empty GET_CONFIG). */
#define HFE_REFUSED 1

struct hfe_mem {
	int fd;
	uint8_t *host;
	uint64_t size;
};

struct hfe {
	int sock;
	uint64_t offered, features, protocol;
	uint64_t extra_protocol; /* asked for besides the usual ones (set before negotiate) */
	struct hfe_mem mem; /* region 0, guest address 0 */
	uint16_t qsize;
	struct virtq_desc *desc;
	struct virtq_avail *avail;
	struct virtq_used *used;
	uint16_t avail_idx, used_idx; /* our shadows */
	int kick_fd, call_fd;
};

/* Memory: a memfd of size bytes mapped shared; seal forbids shrinking and growing. */
int hfe_mem_new(struct hfe_mem *m, uint64_t size, bool seal);
void hfe_mem_free(struct hfe_mem *m);

/* Connect (bounded send and receive timeouts). h is zeroed first. */
int hfe_connect(struct hfe *h, const char *path);
/* Close the socket, the ring fds and the memory. Safe twice. */
void hfe_close(struct hfe *h);

/* Raw bytes with fds in one sendmsg (any framing the case wants). 0 or -errno. */
int hfe_send_raw(int sock, const void *buf, size_t len, const int *fds, unsigned nfds);
/* A message with the header fields as given (version 1 added unless flags has version bits). */
int hfe_send(struct hfe *h, uint32_t req, uint32_t flags, const void *payload, uint32_t size,
	     const int *fds, unsigned nfds);
/* The reply to req (ack: a u64 ack), waiting at most HFE_TIMEOUT_MS. 0 or -errno. */
int hfe_recv_reply(struct hfe *h, uint32_t req, bool ack, struct vio_vhu_msg *reply);

/*
 * Send req and collect what it is owed: its reply, or its ack (NEED_REPLY is
 * set when REPLY_ACK was agreed). 0 (reply in *reply if given), HFE_REFUSED,
 * -ECONNRESET (the backend hung up), -ETIMEDOUT (no answer), other -errno.
 * After a transport error the socket is closed: later calls fail at once.
 */
int hfe_call(struct hfe *h, uint32_t req, const void *payload, uint32_t size, const int *fds,
	     unsigned nfds, struct vio_vhu_msg *reply);
/* The same for a request whose reply may carry an fd (GET_INFLIGHT_FD): *fd, or -1. */
int hfe_call_fd(struct hfe *h, uint32_t req, const void *payload, uint32_t size,
		struct vio_vhu_msg *reply, int *fd);
int hfe_call_u64(struct hfe *h, uint32_t req, uint64_t v);
int hfe_call_state(struct hfe *h, uint32_t req, uint32_t index, uint32_t num);
int hfe_get_u64(struct hfe *h, uint32_t req, uint64_t *v);

/* 0 when the backend closes the connection within ms (what it sends meanwhile is read away). */
int hfe_wait_hangup(struct hfe *h, int ms);
/* The connection still answers in step: GET_FEATURES gets the features offered. */
int hfe_ping(struct hfe *h);
/* GET_STATUS until NEEDS_RESET shows, at most ms: 1 seen, 0 not, -errno. */
int hfe_wait_needs_reset(struct hfe *h, int ms);

/*
 * The usual set-up, step by step (each checks its ack):
 * negotiate: SET_OWNER, features (VERSION_1 | extra), protocol features,
 * status up to FEATURES_OK; share: one memfd region at guest address 0;
 * ring_start: SET_VRING_NUM/BASE/ADDR/KICK/CALL/ENABLE for queue 0 and
 * DRIVER_OK. hfe_setup does all three with a sealed HFE_MEM_SIZE memory.
 * With VIRTIO_F_RING_PACKED the same offsets hold the descriptor ring and
 * the driver and device event suppression areas.
 */
int hfe_negotiate(struct hfe *h, uint64_t extra_features);
int hfe_share_mem(struct hfe *h, uint64_t size, bool seal);
void hfe_ring_layout(struct hfe *h, uint16_t qsize);
int hfe_ring_start(struct hfe *h);
int hfe_setup(struct hfe *h, const char *path, uint64_t extra_features, uint16_t qsize);

/* Ring writes (no checks: the point is to write what a driver must not). */
void hfe_desc(struct hfe *h, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
	      uint16_t next);
void hfe_post(struct hfe *h, uint16_t head); /* avail entry + idx, then kick */
void hfe_kick(struct hfe *h);
/* Wait until n more used entries appear (at most ms). 0 or -ETIMEDOUT. */
int hfe_wait_used(struct hfe *h, uint16_t n, int ms);
/* The len of the used entry i places back (0 = the latest). */
uint32_t hfe_used_len(const struct hfe *h, uint16_t back);

/*
 * A well-formed blk request on queue 0 with descriptors 0-2: header at
 * HFE_HDR_OFF, len bytes of data at HFE_DATA_OFF (device-writable for IN,
 * GET_ID), status byte. The status (0..255), or -errno; *used_len if given.
 */
int hfe_blk(struct hfe *h, uint32_t type, uint64_t sector, uint32_t len, uint32_t *used_len);
/* The same, waiting at most ms (-ETIMEDOUT: not served). */
int hfe_blk_ms(struct hfe *h, uint32_t type, uint64_t sector, uint32_t len, uint32_t *used_len,
	       int ms);

struct virtio_blk_config;
/* The blk config space (VIO_BLK_CONFIG_LEN bytes) through GET_CONFIG: as hfe_call. */
int hfe_blk_config(struct hfe *h, struct virtio_blk_config *cfg);

/* A non-blocking close-on-exec eventfd, or -1. */
int hfe_eventfd(void);

static inline void *hfe_ptr(const struct hfe *h, uint64_t off)
{
	return h->mem.host + off;
}

#endif
