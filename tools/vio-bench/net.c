/* SPDX-License-Identifier: MIT */
/*
 * vio-bench net: Ethernet frames through any vhost-user-net backend with
 * vio's frontend. Owns the five loops (tx, rx, txrx, pingpong, reflect) and
 * the report; each loop runs on one thread and polls. Frames carry a
 * sequence number, so the receiving side counts what went missing.
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "latency.h"
#include "net_bench.h"

#define PROG "vio-bench net"
#define RX_BURST 64u
#define HDR 12u
#define PROBE_SEQ UINT64_MAX /* a frame sent before counting begins */

static atomic_bool stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	atomic_store(&stop_flag, true);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct result {
	uint64_t sent, received, drops, bytes;
	uint64_t probes_sent, probes_back; /* --ready-ms: frames sent before counting began */
	uint64_t rated; /* txrx: frames received between t0 and t1 (the rate's numerator) */
	uint64_t t0, t1;
	struct lat_hist lat;
	bool timed_out; /* --count: not everything came back in time */
};

/* The frames of one burst, each with its sequence number patched in before sending. */
struct gen {
	uint8_t *frames;
	struct vio_net_tx *tx;
	unsigned burst;
	uint32_t size;
};

static int gen_init(struct gen *g, const struct net_opts *o)
{
	g->burst = o->burst;
	g->size = o->size;
	g->frames = calloc(o->burst, o->size);
	g->tx = calloc(o->burst, sizeof(*g->tx));
	if (!g->frames || !g->tx)
		return -1;
	for (unsigned i = 0; i < o->burst; i++) {
		uint8_t *f = g->frames + (size_t)i * o->size;

		memcpy(f, o->dst, 6);
		memcpy(f + 6, o->src, 6);
		f[12] = NET_BENCH_ETHERTYPE >> 8;
		f[13] = NET_BENCH_ETHERTYPE & 0xff;
		for (uint32_t b = 30; b < o->size; b++)
			f[b] = (uint8_t)(b * 7);
		g->tx[i] = (struct vio_net_tx){ f, o->size, NULL };
	}
	return 0;
}

static void gen_free(struct gen *g)
{
	free(g->frames);
	free(g->tx);
}

static void gen_stamp(struct gen *g, unsigned i, uint64_t seq, uint64_t t)
{
	uint8_t *f = g->frames + (size_t)i * g->size;

	memcpy(f + 14, &seq, 8);
	memcpy(f + 22, &t, 8);
}

/* Sequence number and send time of a received test frame; false if it is not one. */
static bool frame_info(const struct vio_net_rx *rx, uint64_t *seq, uint64_t *t)
{
	uint8_t h[30];

	if (rx->len < sizeof(h))
		return false;
	if (rx->seg[0].iov_len >= sizeof(h))
		memcpy(h, rx->seg[0].iov_base, sizeof(h));
	else
		vio_net_rx_copy(rx, h, sizeof(h));
	if (((h[12] << 8) | h[13]) != NET_BENCH_ETHERTYPE)
		return false;
	memcpy(seq, h + 14, 8);
	memcpy(t, h + 22, 8);
	return true;
}

/* Account received frames: gaps in the sequence are drops. */
struct sink {
	uint64_t next, received, drops, bytes;
};

static void sink_take(struct sink *s, const struct vio_net_rx *rx, int n)
{
	for (int i = 0; i < n; i++) {
		uint64_t seq, t;

		if (!frame_info(&rx[i], &seq, &t) || seq == PROBE_SEQ)
			continue;
		if (seq > s->next)
			s->drops += seq - s->next;
		if (seq >= s->next)
			s->next = seq + 1;
		s->received++;
		s->bytes += rx[i].len;
	}
}

static bool running(uint64_t end, unsigned *tick)
{
	/* The clock costs as much as a poll: look at it every 64 loops. */
	if (++*tick % 64)
		return !atomic_load_explicit(&stop_flag, memory_order_relaxed);
	return !atomic_load(&stop_flag) && now_ns() < end;
}

static int send_some(struct net_port *p, struct gen *g, uint64_t *sent, uint64_t limit,
		     unsigned n)
{
	int r;

	if (limit && limit - *sent < n)
		n = (unsigned)(limit - *sent);
	for (unsigned i = 0; i < n; i++)
		gen_stamp(g, i, *sent + i, 0);
	r = vio_net_client_send(p->cl, 0, g->tx, n);
	if (r > 0)
		*sent += (uint64_t)r;
	return r;
}

static int run_tx(const struct net_opts *o, struct net_port *a, struct result *res)
{
	struct gen g;
	uint64_t end;
	unsigned tick = 0;

	if (gen_init(&g, o))
		return -1;
	res->t0 = now_ns();
	end = res->t0 + (uint64_t)o->seconds * 1000000000u;
	while (running(end, &tick) && (!o->count || res->sent < o->count)) {
		if (send_some(a, &g, &res->sent, o->count, g.burst) < 0) {
			gen_free(&g);
			return -1;
		}
	}
	res->t1 = now_ns();
	/* Let the backend take what is queued before we leave. */
	for (uint64_t t = now_ns(); vio_net_client_tx_reap(a->cl, 0) > 0 && now_ns() - t < 1000000000u;)
		;
	res->bytes = res->sent * o->size;
	if (o->count && res->sent < o->count)
		res->timed_out = true;
	gen_free(&g);
	return 0;
}

static int run_rx(const struct net_opts *o, struct net_port *a, struct result *res)
{
	struct vio_net_rx *rx = calloc(RX_BURST, sizeof(*rx));
	struct sink s = { 0 };
	uint64_t end, idle = 0;
	unsigned tick = 0;

	if (!rx)
		return -1;
	res->t0 = now_ns();
	end = res->t0 + (uint64_t)o->seconds * 1000000000u;
	while (running(end, &tick) && (!o->count || s.received < o->count)) {
		int n = vio_net_client_recv(a->cl, 0, rx, RX_BURST);

		if (n < 0) {
			free(rx);
			return -1;
		}
		if (n) {
			if (!s.received)
				res->t0 = now_ns(); /* count from the first frame */
			sink_take(&s, rx, n);
			idle = 0;
		} else if (++idle > 4096) {
			/* A quiet sink sleeps on the call fd instead of spinning. */
			vio_net_client_wait(a->cl, 0, 10);
		}
	}
	res->t1 = now_ns();
	res->received = s.received;
	res->drops = s.drops;
	res->bytes = s.bytes;
	if (o->count && s.received < o->count)
		res->timed_out = true;
	free(rx);
	return 0;
}

/*
 * --ready-ms: a probe frame every 10 ms until one comes back on rx (or the
 * time is up), so a backend that drops frames while a new connection
 * settles (DPDK's vhost PMD does) costs nothing counted. -1 on a broken queue.
 */
static int wait_ready(const struct net_opts *o, struct net_port *tx, struct net_port *rx,
		      struct gen *g, struct result *res)
{
	struct vio_net_rx frames[8];
	uint64_t end = now_ns() + (uint64_t)o->ready_ms * 1000000u, next = 0;

	while (now_ns() < end && !atomic_load(&stop_flag)) {
		int n;

		if (now_ns() >= next) {
			gen_stamp(g, 0, PROBE_SEQ, 0);
			if (vio_net_client_send(tx->cl, 0, g->tx, 1) == 1)
				res->probes_sent++;
			next = now_ns() + 10000000u;
		}
		n = vio_net_client_recv(rx->cl, 0, frames, 8);
		if (n < 0)
			return -1;
		for (int i = 0; i < n; i++) {
			uint64_t seq, t;

			if (frame_info(&frames[i], &seq, &t) && seq == PROBE_SEQ)
				res->probes_back++;
		}
		if (res->probes_back)
			return 0;
	}
	return 0;
}

static int run_txrx(const struct net_opts *o, struct net_port *a, struct net_port *b,
		    struct result *res)
{
	struct vio_net_rx *rx = calloc(RX_BURST, sizeof(*rx));
	struct sink s = { 0 };
	struct gen g;
	uint64_t end, drain_end;
	/*
	 * Frames in flight: a quarter of the receive ring's buffers (the
	 * frames handed out by the last recv hold as many again), in
	 * mergeable 2048-byte buffers a frame takes (size + 12) / 2048 of.
	 */
	uint64_t per = o->no_mrg ? 1 : (o->size + HDR + 2047) / 2048;
	uint64_t window = o->qsize / 4 / per ? o->qsize / 4 / per : 1;
	uint64_t given_up = 0, seen = 0, progress = now_ns(), warm_end, base = 0;
	unsigned tick = 0;
	int n;

	if (!rx || gen_init(&g, o)) {
		free(rx);
		return -1;
	}
	if (o->ready_ms && wait_ready(o, a, b, &g, res))
		goto fail;
	res->t0 = now_ns();
	progress = res->t0;
	warm_end = res->t0 + (uint64_t)o->warmup_ms * 1000000u;
	end = warm_end + (uint64_t)o->seconds * 1000000000u;
	while (running(end, &tick) && (!o->count || res->sent < o->count)) {
		/* The rate is counted from the end of the warm-up. */
		if (warm_end && (tick % 64) == 0 && now_ns() >= warm_end) {
			res->t0 = now_ns();
			base = s.received;
			warm_end = 0;
		}
		/*
		 * A quarter of the receive ring in flight at most: the sink keeps
		 * up, so what goes missing is lost on the way, not overrun at the
		 * end. Frames not back 50 ms after the last arrival are given up
		 * on (they count as drops at the end), so a loss cannot stall us.
		 */
		uint64_t inflight = res->sent - s.received - given_up;

		if (inflight >= window) {
			uint64_t t = now_ns();

			if (s.received != seen) {
				seen = s.received;
				progress = t;
			} else if (t - progress > 50000000u) {
				given_up += inflight;
				progress = t;
				inflight = 0;
			}
		}
		if (inflight < window &&
		    send_some(a, &g, &res->sent, o->count,
			      window - inflight < g.burst ? (unsigned)(window - inflight) : g.burst) < 0)
			goto fail;
		n = vio_net_client_recv(b->cl, 0, rx, RX_BURST);
		if (n < 0)
			goto fail;
		sink_take(&s, rx, n);
	}
	/* A timed run's rate counts what arrived in its time; a counted run's, all of it. */
	res->t1 = now_ns();
	res->rated = s.received - base;
	/* What is still on its way has 200 ms (with --count: the rest of the time) to arrive. */
	drain_end = now_ns() + (o->count ? (end > now_ns() ? end - now_ns() : 0) : 0) + 200000000u;
	while (s.received < res->sent && now_ns() < drain_end && !atomic_load(&stop_flag)) {
		vio_net_client_tx_reap(a->cl, 0);
		n = vio_net_client_recv(b->cl, 0, rx, RX_BURST);
		if (n < 0)
			goto fail;
		sink_take(&s, rx, n);
	}
	if (o->count) {
		res->t1 = now_ns();
		res->rated = s.received - base;
	}
	res->received = s.received;
	res->drops = res->sent - s.received;
	res->bytes = s.bytes;
	if (o->count && s.received < o->count)
		res->timed_out = true;
	gen_free(&g);
	free(rx);
	return 0;
fail:
	gen_free(&g);
	free(rx);
	return -1;
}

static int run_pingpong(const struct net_opts *o, struct net_port *a, struct result *res)
{
	struct vio_net_rx rx[8];
	struct gen g;
	struct net_opts one = *o;
	uint64_t end;

	one.burst = 1;
	if (gen_init(&g, &one))
		return -1;
	res->t0 = now_ns();
	end = res->t0 + (uint64_t)o->seconds * 1000000000u;
	while (!atomic_load(&stop_flag) && now_ns() < end && (!o->count || res->sent < o->count)) {
		uint64_t seq = res->sent, t = now_ns(), deadline = t + 1000000000u;
		bool back = false;

		gen_stamp(&g, 0, seq, t);
		if (vio_net_client_send(a->cl, 0, g.tx, 1) != 1) {
			vio_net_client_tx_reap(a->cl, 0);
			continue;
		}
		res->sent++;
		while (!back && now_ns() < deadline && !atomic_load(&stop_flag)) {
			int n = vio_net_client_recv(a->cl, 0, rx, 8);

			if (n < 0) {
				gen_free(&g);
				return -1;
			}
			for (int i = 0; i < n; i++) {
				uint64_t s, ts;

				if (frame_info(&rx[i], &s, &ts) && s == seq && ts == t) {
					lat_add(&res->lat, now_ns() - t);
					res->received++;
					res->bytes += rx[i].len;
					back = true;
				}
			}
		}
		if (!back)
			res->drops++;
	}
	res->t1 = now_ns();
	if (o->count && res->received < o->count)
		res->timed_out = true;
	gen_free(&g);
	return 0;
}

static int run_reflect(const struct net_opts *o, struct net_port *a, struct result *res)
{
	struct vio_net_rx *rx = calloc(RX_BURST, sizeof(*rx));
	struct vio_net_tx *tx = calloc(RX_BURST, sizeof(*tx));
	uint8_t *buf = malloc((size_t)RX_BURST * NET_BENCH_MAX);
	uint64_t end, idle = 0;
	unsigned tick = 0;

	if (!rx || !tx || !buf)
		goto fail;
	res->t0 = now_ns();
	end = res->t0 + (uint64_t)o->seconds * 1000000000u;
	while (running(end, &tick) && (!o->count || res->received < o->count)) {
		int n = vio_net_client_recv(a->cl, 0, rx, RX_BURST), k = 0, sent;

		if (n < 0)
			goto fail;
		if (!n) {
			if (++idle > 4096)
				vio_net_client_wait(a->cl, 0, 10);
			continue;
		}
		idle = 0;
		for (int i = 0; i < n; i++) {
			uint8_t *f = buf + (size_t)k * NET_BENCH_MAX, mac[6];
			size_t len = vio_net_rx_copy(&rx[i], f, NET_BENCH_MAX);

			res->received++;
			if (len < 14)
				continue;
			memcpy(mac, f, 6);
			memcpy(f, f + 6, 6);
			memcpy(f + 6, mac, 6);
			tx[k++] = (struct vio_net_tx){ f, (uint32_t)len, NULL };
		}
		sent = 0;
		while (sent < k && !atomic_load(&stop_flag)) {
			int r = vio_net_client_send(a->cl, 0, tx + sent, (unsigned)(k - sent));

			if (r < 0)
				goto fail;
			sent += r;
		}
		res->sent += (uint64_t)sent;
	}
	res->t1 = now_ns();
	free(rx);
	free(tx);
	free(buf);
	return 0;
fail:
	free(rx);
	free(tx);
	free(buf);
	return -1;
}

static void report(const struct net_opts *o, const struct result *r)
{
	double secs = (double)(r->t1 - r->t0) / 1e9;
	uint64_t counted = o->mode == NET_TX ? r->sent : o->mode == NET_TXRX ? r->rated : r->received;
	double mpps = secs > 0 ? (double)counted / secs / 1e6 : 0;
	double gbps = secs > 0 ? (double)counted * o->size * 8 / secs / 1e9 : 0;
	double p50 = (double)lat_percentile(&r->lat, 50) / 1000;
	double p99 = (double)lat_percentile(&r->lat, 99) / 1000;

	printf("%s, %u-byte frames, %.2f s: sent %llu, received %llu, drops %llu\n",
	       net_mode_names[o->mode], o->size, secs, (unsigned long long)r->sent,
	       (unsigned long long)r->received, (unsigned long long)r->drops);
	printf("  %.3f Mpps, %.3f Gbit/s", mpps, gbps);
	if (o->mode == NET_PINGPONG)
		printf(", round trip p50 %.1f us, p99 %.1f us", p50, p99);
	printf("\n");
	if (o->machine)
		printf("mode=%s size=%u seconds=%.3f sent=%llu received=%llu drops=%llu mpps=%.4f "
		       "gbps=%.4f p50_us=%.2f p99_us=%.2f probes_sent=%llu probes_back=%llu\n",
		       net_mode_names[o->mode], o->size, secs, (unsigned long long)r->sent,
		       (unsigned long long)r->received, (unsigned long long)r->drops, mpps, gbps,
		       p50, p99, (unsigned long long)r->probes_sent,
		       (unsigned long long)r->probes_back);
	fflush(stdout);
}

static struct net_port_opts port_opts(const struct net_opts *o, const char *sock)
{
	return (struct net_port_opts){
		.socket = sock, .pairs = o->pairs, .qsize = o->qsize, .packed = o->packed,
		.iommu = o->iommu,
		.no_mrg = o->no_mrg, .no_event_idx = o->no_event_idx, .in_order = o->in_order,
		.rx_buf_size = o->no_mrg ? HDR + NET_BENCH_MAX : 2048,
		.tx_buf_size = (HDR + o->size + 63) & ~63u,
	};
}

int vio_bench_net(int argc, char **argv)
{
	struct net_port a = { 0 }, b = { 0 };
	struct net_port_opts po;
	struct net_opts o;
	static struct result res;
	char err[256];
	int r;

	r = net_parse_args(argc, argv, &o);
	if (r)
		return r == 1 ? 0 : 2;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	po = port_opts(&o, o.socket);
	if (net_port_open(&po, &a, err, sizeof(err))) {
		fprintf(stderr, PROG ": %s\n", err);
		return 1;
	}
	if (o.rx_socket) {
		po = port_opts(&o, o.rx_socket);
		if (net_port_open(&po, &b, err, sizeof(err))) {
			fprintf(stderr, PROG ": %s\n", err);
			net_port_close(&a);
			return 1;
		}
	}
	lat_reset(&res.lat);
	switch (o.mode) {
	case NET_TX: r = run_tx(&o, &a, &res); break;
	case NET_RX: r = run_rx(&o, &a, &res); break;
	case NET_TXRX: r = run_txrx(&o, &a, &b, &res); break;
	case NET_PINGPONG: r = run_pingpong(&o, &a, &res); break;
	case NET_REFLECT: r = run_reflect(&o, &a, &res); break;
	}
	if (r)
		fprintf(stderr, PROG ": a queue broke (the backend misbehaved or went away)\n");
	else
		report(&o, &res);
	if (!r && res.timed_out)
		fprintf(stderr, PROG ": --count %llu: not every frame made it in %u s\n",
			(unsigned long long)o.count, o.seconds);
	net_port_close(&b);
	net_port_close(&a);
	return r || res.timed_out ? 1 : 0;
}
