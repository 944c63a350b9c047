/* SPDX-License-Identifier: MIT */
/*
 * viod's network side: builds the switch and its ports from the command
 * line and wires each vhost-user backend's queue hooks to the poller with
 * the switch as the group, so one thread polls every queue of the switch.
 * It never touches a ring or a frame itself.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vio/log.h"

#include "dlog.h"
#include "net_serve.h"

static int hook_start_queue(void *opaque, unsigned q, struct vio_virtq *vq, int kick_fd)
{
	struct net_served *s = opaque;
	struct vio_poll_queue pq = {
		.vdev = vio_net_vdev(s->net), .q = q, .vq = vq, .kick_fd = kick_fd,
		.name = s->queue_names[q], .group = s->np->sw,
	};
	char name[sizeof(s->queue_names[q])];

	snprintf(name, sizeof(name), "%s queue %u", s->spec.sock, q);
	memcpy(s->queue_names[q], name, sizeof(name));
	return vio_poller_add(s->np->poller, &pq);
}

static void hook_stop_queue(void *opaque, unsigned q)
{
	struct net_served *s = opaque;

	vio_poller_remove(s->np->poller, s->net, q);
}

static void hook_connection(void *opaque, bool connected)
{
	struct net_served *s = opaque;

	dlog(VIO_LOG_INFO, s->spec.sock, "front-end %s", connected ? "connected" : "disconnected");
}

static void hook_queue_fault(void *opaque, unsigned q, enum vio_virtq_fault why)
{
	struct net_served *s = opaque;

	dlog(VIO_LOG_ERR, s->spec.sock, "queue %u stopped: the driver broke the ring (%s); "
	     "the device now reports NEEDS_RESET", q, vio_virtq_fault_str(why));
}

static int serve_port(struct net_ports *np, struct net_served *s, uint64_t max_guest_mem)
{
	const struct net_spec *sp = &s->spec;
	struct vio_net_opts no = {
		.sw = np->sw, .name = sp->sock, .queue_pairs = sp->queues,
		.mac = sp->has_mac ? sp->mac : NULL, .mtu = sp->mtu,
	};
	struct vio_vhu_backend_opts vo = {
		.socket_path = sp->sock, .client = sp->client, .max_mem_bytes = max_guest_mem,
		.hooks = {.start_queue = hook_start_queue, .stop_queue = hook_stop_queue,
			  .connection = hook_connection, .queue_fault = hook_queue_fault},
		.hooks_opaque = s,
	};
	int r;

	s->np = np;
	r = vio_net_new(&no, &s->net);
	if (r) {
		dlog(VIO_LOG_ERR, sp->sock, "cannot make a net device: %s", strerror(-r));
		return r;
	}
	vo.vdev = vio_net_vdev(s->net);
	r = vio_vhu_backend_new(&vo, &s->backend);
	if (r) {
		dlog(VIO_LOG_ERR, sp->sock, "cannot %s the socket: %s",
		     sp->client ? "set up" : "listen on", strerror(-r));
		vio_net_free(s->net);
		s->net = NULL;
		return r;
	}
	dlog(VIO_LOG_INFO, sp->sock, "%s switch port %u, %u queue pair%s",
	     sp->client ? "connecting for" : "serving", vio_net_port(s->net), sp->queues,
	     sp->queues == 1 ? "" : "s");
	return 0;
}

static int serve_tap(struct net_ports *np, const struct tap_spec *ts)
{
	struct vio_tap *t;
	struct vio_poll_queue pq = { .q = 0, .vq = NULL, .kick_fd = -1, .name = ts->ifname };
	int r = vio_tap_new(np->sw, ts->ifname, &t);

	if (r) {
		dlog(VIO_LOG_ERR, ts->ifname, "cannot open the tap: %s%s", strerror(-r),
		     r == -EPERM ? " (needs CAP_NET_ADMIN)" : "");
		return r;
	}
	pq.vdev = vio_tap_vdev(t);
	pq.group = np->sw;
	r = vio_poller_add(np->poller, &pq);
	if (r) {
		dlog(VIO_LOG_ERR, ts->ifname, "cannot poll the tap: %s", strerror(-r));
		vio_tap_free(t);
		return r;
	}
	np->taps[np->ntaps++] = t;
	dlog(VIO_LOG_INFO, ts->ifname, "tap, switch port %u", vio_tap_port(t));
	return 0;
}

int net_ports_start(struct net_ports *np, struct vio_poller *poller, uint64_t max_guest_mem,
		    const struct net_spec *specs, unsigned n, const struct tap_spec *taps,
		    unsigned ntaps)
{
	int r;

	memset(np, 0, sizeof(*np));
	np->poller = poller;
	if (n > VIOD_MAX_NET || ntaps > VIOD_MAX_TAPS)
		return -EINVAL;
	r = vio_switch_new(NULL, &np->sw);
	if (r)
		return r;
	for (unsigned i = 0; i < n; i++) {
		np->ports[i].spec = specs[i];
		r = serve_port(np, &np->ports[i], max_guest_mem);
		if (r)
			goto fail;
		np->nports++;
	}
	for (unsigned i = 0; i < ntaps; i++) {
		r = serve_tap(np, &taps[i]);
		if (r)
			goto fail;
	}
	return 0;
fail:
	net_ports_stop(np);
	return r;
}

void net_ports_stop(struct net_ports *np)
{
	if (!np->sw)
		return;
	/* Freeing a backend stops its queues through the hooks: the poller lets them go. */
	for (unsigned i = 0; i < np->nports; i++) {
		vio_vhu_backend_free(np->ports[i].backend);
		np->ports[i].backend = NULL;
	}
	for (unsigned i = 0; i < np->ntaps; i++) {
		vio_poller_remove(np->poller, np->taps[i], 0);
		vio_tap_free(np->taps[i]);
	}
	np->ntaps = 0;
	for (unsigned i = 0; i < np->nports; i++) {
		vio_net_free(np->ports[i].net);
		np->ports[i].net = NULL;
	}
	np->nports = 0;
	vio_switch_free(np->sw);
	np->sw = NULL;
}

void net_ports_print_stats(const struct net_ports *np)
{
	unsigned n = np->sw ? vio_switch_nports(np->sw) : 0;

	for (unsigned i = 0; i < n; i++) {
		struct vio_net_port_stats st;
		char name[64], line[640], drops[512] = "";
		size_t off = 0;

		if (vio_switch_port_stats(np->sw, i, &st, name, sizeof(name)))
			continue;
		for (unsigned d = 0; d < VIO_NET_DROP_COUNT && off < sizeof(drops); d++)
			if (st.drops[d])
				off += (size_t)snprintf(drops + off, sizeof(drops) - off, " %s=%llu",
							vio_net_drop_str(d),
							(unsigned long long)st.drops[d]);
		snprintf(line, sizeof(line), "port %u: rx_packets=%llu rx_bytes=%llu tx_packets=%llu "
			 "tx_bytes=%llu drops:%s", i, (unsigned long long)st.rx_packets,
			 (unsigned long long)st.rx_bytes, (unsigned long long)st.tx_packets,
			 (unsigned long long)st.tx_bytes, off ? drops : " none");
		/* Asked for (SIGUSR1, exit): printed whatever the log level. */
		vio_log_stderr("viod", VIO_LOG_INFO, name, line);
	}
	if (np->poller && vio_poller_busy_ns(np->poller)) {
		char line[96];

		snprintf(line, sizeof(line), "busy_ns=%llu (in polls that found work)",
			 (unsigned long long)vio_poller_busy_ns(np->poller));
		vio_log_stderr("viod", VIO_LOG_INFO, "poller", line);
	}
}
