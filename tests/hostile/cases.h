/* SPDX-License-Identifier: MIT */
/*
 * The hostile cases and what they share. A case attacks one device (its
 * socket in c->sock), checks what that device must do about it (refuse,
 * fail the queue with NEEDS_RESET and log the cause, hang up, or answer the
 * request with an error status) and closes every connection it opened. The
 * runner (main.c) then checks what holds after every case: viod alive, the
 * device and the others serving a fresh front-end, no fd or mapping growth.
 */
#ifndef VIO_HOSTILE_CASES_H
#define VIO_HOSTILE_CASES_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "hfe.h"
#include "vio/virtq.h"

struct hctx {
	pid_t pid;
	const char *log;
	long log_from;  /* viod's log up to here predates the case */
	const char *sock;
	char why[600];  /* the first failure */
	char note[300]; /* what was observed, printed as a comment */
};

struct hcase {
	const char *name;
	int (*fn)(struct hctx *c);
};

/* NULL-terminated lists, one per cases_*.c. */
extern const struct hcase ring_cases[];
extern const struct hcase packed_cases[];
extern const struct hcase inflight_cases[];
extern const struct hcase req_cases[];
extern const struct hcase msg_cases[];
extern const struct hcase fd_cases[];
extern const struct hcase log_cases[];
extern const struct hcase iotlb_cases[];

/* Record the first failure; returns -1. */
int fail(struct hctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append an observation. */
void note(struct hctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* hfe_setup on c->sock; a failure is the case's. */
int setup(struct hctx *c, struct hfe *h, uint64_t features, uint16_t qsize);
/* Connect to c->sock and negotiate (no memory, no ring). */
int negotiated(struct hctx *c, struct hfe *h);

/*
 * The queue broke the way it must: NEEDS_RESET within 2 s on h, and the log
 * names the cause (want, or alt if not VIO_VQ_OK).
 */
int expect_fault(struct hctx *c, struct hfe *h, enum vio_virtq_fault want,
		 enum vio_virtq_fault alt);
/* A request that must be refused: r is HFE_REFUSED, or the backend hung up. */
int expect_refused(struct hctx *c, struct hfe *h, int r, const char *what);
/* The backend must hang up within ms (the stream cannot be trusted any more). */
int expect_hangup(struct hctx *c, struct hfe *h, int ms, const char *what);
/* The request was refused or the connection dropped, or the connection still answers. */
int expect_survives(struct hctx *c, struct hfe *h, const char *what);
/*
 * After a malformed message sent with NEED_REPLY: within 3 s a non-zero
 * ack and a connection still in step, or a hang-up.
 */
int expect_rejected(struct hctx *c, struct hfe *h, uint32_t req, const char *what);
/* Within 3 s any answer to req (an ack if ack) and a connection in step, or a hang-up. */
int expect_answer_or_hangup(struct hctx *c, struct hfe *h, uint32_t req, bool ack,
			    const char *what);
/* viod's log since the case began names needle. */
int expect_logged(struct hctx *c, const char *needle);

/* The blk config space, and the capacity in sectors, through GET_CONFIG. */
struct virtio_blk_config;
int blk_config(struct hctx *c, struct hfe *h, struct virtio_blk_config *cfg);
int capacity(struct hctx *c, struct hfe *h, uint64_t *sectors);

#endif
