/* SPDX-License-Identifier: MIT */
/*
 * The vhost-user frontend's private state, shared by frontend.c
 * (connection, negotiation, memory, queues) and frontend_migrate.c (dirty
 * log and the hand-over to a destination backend).
 */
#ifndef VIO_VHU_FRONTEND_INTERNAL_H
#define VIO_VHU_FRONTEND_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "core/mem_internal.h"
#include "msg.h"
#include "vio/vhost_user.h"

#define VHU_RING_ALIGN 4096u
/* How long a clean disconnect waits for each GET_VRING_BASE reply. */
#define VHU_DISCONNECT_TIMEOUT_MS 500u

struct vhu_fe_queue {
	struct vio_virtq *vq;
	struct vio_virtq_addrs addrs; /* guest addresses of its rings */
	struct vio_drv_ctx ctx;
	int kick_fd, call_fd;
	bool running;
};

struct vio_vhu_frontend {
	char name[128]; /* owner of its log lines */
	int sock;
	int mem_fd;
	void *mem_host;
	uint64_t mem_size;
	struct vio_mem mem;
	uint64_t backend_features;
	uint64_t features; /* negotiated virtio features */
	uint64_t protocol;
	uint8_t status;
	unsigned nqueues;
	uint16_t queue_size, indirect_max;
	size_t alloc_off;
	struct vhu_fe_queue *q;
	char *path;            /* the socket, for reconnecting */
	uint64_t wanted;       /* virtio features asked for at connect */
	int timeout_ms;
	int inflight_fd;       /* the backend's inflight region, kept across reconnects; or -1 */
	struct vio_vhu_inflight inflight;

	/* frontend_migrate.c */
	int log_fd;            /* the dirty bitmap's memfd; -1: none yet */
	uint64_t *log;         /* its mapping: bit n of word w is page 64 w + n */
	size_t log_words;
	bool logging;          /* VHOST_F_LOG_ALL is on */
	int dst_sock, dst_mem_fd; /* migrate_prepare: the destination's connection and memory */
	void *dst_host;        /* where dst_mem_fd is mapped until the switch-over */
	char *dst_path;
};

static inline bool vhu_fe_has_proto(const struct vio_vhu_frontend *f, unsigned bit)
{
	return (f->protocol >> bit) & 1;
}

/* frontend.c */
void vhu_fe_close_fd(int *fd);
/*
 * Send m; collect its reply into m when the request has one, or its ack when
 * REPLY_ACK is agreed. 0, -EIO for a refused request, other negative errno.
 */
int vhu_fe_request(struct vio_vhu_frontend *f, struct vio_vhu_msg *m);
int vhu_fe_request_u64(struct vio_vhu_frontend *f, uint32_t req, uint64_t v);
/* SET_VRING_ADDR for queue q, with VHOST_VRING_F_LOG (used ring's guest address) when log. */
int vhu_fe_send_vring_addr(struct vio_vhu_frontend *f, unsigned q, bool log);
/*
 * On a fresh connection (f->sock): negotiate the features f had (else
 * -EPROTO), share the memory, hand over the inflight region, start every
 * queue at bases[q] (NULL: where the driver side says its ring stands)
 * and set DRIVER_OK.
 */
int vhu_fe_resume(struct vio_vhu_frontend *f, const uint32_t *bases);
/* frontend_migrate.c: drop the bitmap and any prepared destination. */
void vhu_fe_migrate_close(struct vio_vhu_frontend *f);

#endif
