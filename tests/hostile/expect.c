/* SPDX-License-Identifier: MIT */
/*
 * What a case expects of the device it attacked, in one place: each helper
 * states one outcome the backend must show (refusal, hang-up, a queue fault
 * with NEEDS_RESET and its cause in the log) and records the first failure
 * in the case's context. Never waits without a bound.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "cases.h"
#include "vio/blk.h"
#include "watch.h"

int fail(struct hctx *c, const char *fmt, ...)
{
	va_list ap;

	if (c->why[0])
		return -1;
	va_start(ap, fmt);
	vsnprintf(c->why, sizeof(c->why), fmt, ap);
	va_end(ap);
	return -1;
}

void note(struct hctx *c, const char *fmt, ...)
{
	size_t len = strlen(c->note);
	va_list ap;

	if (len && len + 2 < sizeof(c->note)) {
		strcat(c->note, "; ");
		len += 2;
	}
	va_start(ap, fmt);
	vsnprintf(c->note + len, sizeof(c->note) - len, fmt, ap);
	va_end(ap);
}

int setup(struct hctx *c, struct hfe *h, uint64_t features, uint16_t qsize)
{
	int r = hfe_setup(h, c->sock, features, qsize);

	if (r)
		return fail(c, "setting up a well-formed ring failed: %s",
			    r == HFE_REFUSED ? "refused" : strerror(-r));
	return 0;
}

int negotiated(struct hctx *c, struct hfe *h)
{
	int r = hfe_connect(h, c->sock);

	if (!r)
		r = hfe_negotiate(h, 0);
	if (r)
		return fail(c, "set-up: %s", r == HFE_REFUSED ? "refused" : strerror(-r));
	return 0;
}

/* Wait up to 3 s for an answer to req: 1 hung up, 0 answer in *m, -1 failed. */
static int answer(struct hctx *c, struct hfe *h, uint32_t req, bool ack, struct vio_vhu_msg *m,
		  const char *what)
{
	struct pollfd pfd = { .fd = h->sock, .events = POLLIN };
	char b;
	int r;

	if (h->sock < 0)
		return fail(c, "%s: could not be sent", what);
	if (poll(&pfd, 1, 3000) <= 0)
		return fail(c, "%s: neither answered nor hung up on within 3 s", what);
	if (recv(h->sock, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0)
		r = -ECONNRESET;
	else
		r = hfe_recv_reply(h, req, ack, m);
	if (r == -ECONNRESET) {
		note(c, "%s: hung up", what);
		return 1;
	}
	if (r)
		return fail(c, "%s: the answer was not %s: %s", what, ack ? "an ack" : "a reply",
			    strerror(-r));
	return 0;
}

int expect_rejected(struct hctx *c, struct hfe *h, uint32_t req, const char *what)
{
	struct vio_vhu_msg m;
	int r = answer(c, h, req, true, &m, what);

	if (r)
		return r > 0 ? 0 : -1;
	if (m.p.u64 == 0)
		return fail(c, "%s was accepted", what);
	return expect_survives(c, h, what);
}

int expect_answer_or_hangup(struct hctx *c, struct hfe *h, uint32_t req, bool ack,
			    const char *what)
{
	struct vio_vhu_msg m;
	int r = answer(c, h, req, ack, &m, what);

	if (r)
		return r > 0 ? 0 : -1;
	return expect_survives(c, h, what);
}

int expect_logged(struct hctx *c, const char *needle)
{
	if (log_has(c->log, c->log_from, needle))
		return 0;
	return fail(c, "viod's log does not name the cause ('%s')", needle);
}

int expect_fault(struct hctx *c, struct hfe *h, enum vio_virtq_fault want,
		 enum vio_virtq_fault alt)
{
	int r = hfe_wait_needs_reset(h, 2000);

	if (r < 0)
		return fail(c, "GET_STATUS after the bad ring entry: %s", strerror(-r));
	if (r == 0)
		return fail(c, "no NEEDS_RESET within 2 s (expected: %s)", vio_virtq_fault_str(want));
	if (alt != VIO_VQ_OK && log_has(c->log, c->log_from, vio_virtq_fault_str(alt)))
		return 0;
	return expect_logged(c, vio_virtq_fault_str(want));
}

int expect_refused(struct hctx *c, struct hfe *h, int r, const char *what)
{
	if (r == HFE_REFUSED)
		return 0;
	if (r == -ECONNRESET) {
		note(c, "%s: the backend hung up", what);
		return 0;
	}
	if (r == 0)
		return fail(c, "%s was accepted", what);
	return fail(c, "%s: %s", what, strerror(-r));
}

int expect_hangup(struct hctx *c, struct hfe *h, int ms, const char *what)
{
	int r = hfe_wait_hangup(h, ms);

	if (r == 0)
		return 0;
	if (r == -ETIMEDOUT)
		return fail(c, "%s: the connection still open after %d ms", what, ms);
	return fail(c, "%s: %s", what, strerror(-r));
}

int expect_survives(struct hctx *c, struct hfe *h, const char *what)
{
	int r;

	if (h->sock < 0) {
		note(c, "%s: the backend hung up", what);
		return 0;
	}
	r = hfe_ping(h);
	if (r == -ECONNRESET) {
		note(c, "%s: the backend hung up", what);
		return 0;
	}
	if (r)
		return fail(c, "after %s the connection neither answers nor closes: %s", what,
			    strerror(-r));
	return 0;
}

int blk_config(struct hctx *c, struct hfe *h, struct virtio_blk_config *cfg)
{
	int r = hfe_blk_config(h, cfg);

	if (r)
		return fail(c, "GET_CONFIG: %s", r == HFE_REFUSED ? "refused" : strerror(-r));
	return 0;
}

int capacity(struct hctx *c, struct hfe *h, uint64_t *sectors)
{
	struct virtio_blk_config cfg;

	if (blk_config(c, h, &cfg))
		return -1;
	*sectors = cfg.capacity;
	return 0;
}
