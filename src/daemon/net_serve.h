/* SPDX-License-Identifier: MIT */
/*
 * viod's network side: one switch, a virtio-net port per --net (a
 * vhost-user backend) and a tap port per --tap, every queue of them on one
 * data-plane thread of the poller (the switch thread).
 */
#ifndef VIO_NET_SERVE_H
#define VIO_NET_SERVE_H

#include "net_spec.h"
#include "poller.h"
#include "vio/net.h"
#include "vio/vhost_user.h"

#define VIOD_MAX_NET 32
#define VIOD_MAX_TAPS 8

struct net_served {
	struct net_spec spec;
	struct vio_net *net;
	struct vio_vhu_backend *backend;
	struct net_ports *np;
	char queue_names[2 * VIO_NET_MAX_PAIRS + 1][128];
};

struct net_ports {
	struct vio_switch *sw;
	struct vio_poller *poller;
	struct net_served ports[VIOD_MAX_NET];
	unsigned nports;
	struct vio_tap *taps[VIOD_MAX_TAPS];
	unsigned ntaps;
};

/*
 * Create the switch and every port (each backend maps at most max_guest_mem
 * of guest memory); on failure (reported) everything made is undone.
 */
int net_ports_start(struct net_ports *np, struct vio_poller *poller, uint64_t max_guest_mem,
		    const struct net_spec *specs, unsigned n, const struct tap_spec *taps,
		    unsigned ntaps);

/* Stop every queue, free every port and the switch. Safe on a zeroed struct. */
void net_ports_stop(struct net_ports *np);

/* One line per port on stderr: packets and bytes each way, drops by reason. */
void net_ports_print_stats(const struct net_ports *np);

#endif
