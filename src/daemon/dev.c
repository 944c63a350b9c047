/* SPDX-License-Identifier: MIT */
/*
 * viod's devices: making a blk disk, a net port or a tap from its
 * description, serving it (a vhost-user backend whose queues go to the
 * poller), and taking it down again, at start or at any time through the
 * management API. Control thread only; it never touches a ring or a frame.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blk_check.h"
#include "dlog.h"
#include "viod.h"

static int fail(char *err, size_t errlen, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return r;
}

const char *viod_dev_type_str(enum viod_dev_type t)
{
	switch (t) {
	case VIOD_BLK: return "blk";
	case VIOD_NET: return "net";
	case VIOD_TAP: return "tap";
	}
	return "?";
}

struct viod_dev *viod_find(struct viod *d, const char *name)
{
	for (struct viod_dev *v = d->devs; v; v = v->next)
		if (!strcmp(v->name, name))
			return v;
	return NULL;
}

/* Name and socket must be new: two devices on one socket cannot both listen. */
static int check_unique(struct viod *d, const char *name, const char *sock, char *err,
			size_t errlen)
{
	for (struct viod_dev *v = d->devs; v; v = v->next) {
		if (!strcmp(v->name, name))
			return fail(err, errlen, -EEXIST, "a device named %s exists", name);
		if (sock && v->type == VIOD_BLK && !strcmp(v->spec.blk.sock, sock))
			return fail(err, errlen, -EEXIST, "socket %s is served already", sock);
		if (sock && v->type == VIOD_NET && !strcmp(v->spec.net.sock, sock))
			return fail(err, errlen, -EEXIST, "socket %s is served already", sock);
	}
	return 0;
}

static struct viod_dev *dev_alloc(struct viod *d, enum viod_dev_type type, const char *name,
				  unsigned nqueues)
{
	struct viod_dev *v = calloc(1, sizeof(*v));

	if (!v)
		return NULL;
	v->qnames = calloc(nqueues ? nqueues : 1, sizeof(*v->qnames));
	if (!v->qnames) {
		free(v);
		return NULL;
	}
	v->d = d;
	v->type = type;
	v->nqueues = nqueues;
	snprintf(v->name, sizeof(v->name), "%s", name);
	for (unsigned q = 0; q < nqueues; q++)
		snprintf(v->qnames[q], sizeof(v->qnames[q]), "%s q%u", v->name, q);
	return v;
}

static void dev_link(struct viod *d, struct viod_dev *v)
{
	struct viod_dev **p = &d->devs;

	while (*p)
		p = &(*p)->next;
	*p = v;
	d->ndevs++;
}

static void dev_release(struct viod_dev *v)
{
	free(v->qnames);
	free(v);
}

/* ---- backend hooks: a device's queues go to the poller and come back ---- */

static struct vio_vdev dev_vdev(struct viod_dev *v)
{
	return v->type == VIOD_BLK ? vio_blk_vdev(v->blk) : vio_net_vdev(v->net);
}

static int hook_start_queue(void *opaque, unsigned q, struct vio_virtq *vq, int kick_fd)
{
	struct viod_dev *v = opaque;
	struct vio_poll_queue pq = {
		.vdev = dev_vdev(v), .q = q, .vq = vq, .kick_fd = kick_fd,
		.name = q < v->nqueues ? v->qnames[q] : v->name,
		/* Every queue of one switch is polled by one thread (include/vio/net.h). */
		.group = v->type == VIOD_NET ? (const void *)v->d->sw : NULL,
	};
	int r = vio_poller_add(v->d->poller, &pq);

	if (!r && q < VIO_VHU_MAX_QUEUES)
		v->vqs[q] = vq;
	return r;
}

static void hook_stop_queue(void *opaque, unsigned q)
{
	struct viod_dev *v = opaque;

	vio_poller_remove(v->d->poller, dev_vdev(v).dev, q);
	if (q < VIO_VHU_MAX_QUEUES)
		v->vqs[q] = NULL;
}

static void hook_connection(void *opaque, bool connected)
{
	struct viod_dev *v = opaque;

	v->connected = connected;
	dlog(VIO_LOG_INFO, v->name, "front-end %s", connected ? "connected" : "disconnected");
}

static int serve(struct viod *d, struct viod_dev *v, const char *sock, bool client,
		 char *err, size_t errlen)
{
	struct vio_vhu_backend_opts vo = {
		.socket_path = sock, .name = v->name, .client = client,
		.max_mem_bytes = d->o.max_guest_mem, .socket_mode = d->o.socket_mode,
		.vdev = dev_vdev(v), .hooks_opaque = v,
		/*
		 * A guest behind a vIOMMU (docs/viommu.md). Not net yet: a frame
		 * that finds its receive buffer's page not yet in the IOTLB is
		 * dropped, and a Linux guest maps every receive buffer anew.
		 */
		.access_platform = v->type == VIOD_BLK,
		.hooks = { .start_queue = hook_start_queue, .stop_queue = hook_stop_queue,
			   .connection = hook_connection },
	};
	int r = vio_vhu_backend_new(&vo, &v->backend);

	if (r)
		return fail(err, errlen, r, "cannot %s %s: %s", client ? "set up" : "listen on",
			    sock, strerror(-r));
	r = viod_watch_backend(d, v, true);
	if (r) {
		vio_vhu_backend_free(v->backend);
		v->backend = NULL;
		return fail(err, errlen, r, "cannot watch %s: %s", sock, strerror(-r));
	}
	return 0;
}

/* ---- blk ---- */

static void describe_blk(const struct viod_dev *v, char *buf, size_t len)
{
	const struct blk_spec *sp = &v->spec.blk;
	unsigned long long mib = vio_blk_capacity_bytes(v->blk) >> 20;

	snprintf(buf, len, "%s%s, %llu MiB, %u queue%s%s%s", sp->file[0] ? "file " :
		 sp->null_size ? "null disk (stores nothing)" : "RAM disk", sp->file,
		 mib, sp->queues, sp->queues == 1 ? "" : "s", sp->readonly ? ", read-only" : "",
		 sp->direct ? ", O_DIRECT" : "");
}

int viod_add_blk(struct viod *d, const struct blk_spec *sp, char *err, size_t errlen)
{
	const char *name = sp->name[0] ? sp->name : sp->sock;
	struct vio_blk_opts bo = {
		.name = name, .file = sp->file[0] ? sp->file : NULL, .ram_size = sp->ram_size,
		.null_size = sp->null_size, .queues = sp->queues, .readonly = sp->readonly,
		.direct = sp->direct, .serial = sp->serial[0] ? sp->serial : NULL,
		.offset = sp->offset, .length = sp->length, .shared = sp->shared,
	};
	struct viod_dev *v;
	char what[4400];
	int r;

	r = check_unique(d, name, sp->sock, err, errlen);
	if (r)
		return r;
	r = blk_spec_check(sp, err, errlen);
	if (r)
		return r;
	v = dev_alloc(d, VIOD_BLK, name, sp->queues);
	if (!v)
		return fail(err, errlen, -ENOMEM, "out of memory");
	v->spec.blk = *sp;
	r = vio_blk_new(&bo, &v->blk);
	if (r) {
		if (bo.file)
			fail(err, errlen, r, "cannot serve %s: %s%s", bo.file, strerror(-r),
			     r == -EBUSY ? " (another device or process has the image locked; give "
			     "',shared' to every device that may serve it at once)" :
			     r == -EINVAL && bo.direct ? " (does the filesystem support O_DIRECT?)" :
			     r == -EINVAL && (sp->offset || sp->length) ?
			     " (the window must lie inside the file, in whole sectors)" : "");
		else
			fail(err, errlen, r, "cannot make a %llu-byte %s disk: %s",
			     (unsigned long long)(bo.ram_size ? bo.ram_size : bo.null_size),
			     bo.ram_size ? "RAM" : "null", strerror(-r));
		dev_release(v);
		return r;
	}
	vio_blk_set_qos(v->blk, &(struct vio_blk_qos){ .iops = sp->iops, .iops_burst = sp->iops_burst,
						       .bps = sp->bps, .bps_burst = sp->bps_burst });
	r = serve(d, v, sp->sock, sp->client, err, errlen);
	if (r) {
		vio_blk_free(v->blk);
		dev_release(v);
		return r;
	}
	dev_link(d, v);
	describe_blk(v, what, sizeof(what));
	dlog(VIO_LOG_INFO, v->name, "%s %s on %s", sp->client ? "connecting for" : "serving", what,
	     sp->sock);
	return 0;
}

/* ---- net ---- */

static int ensure_switch(struct viod *d, char *err, size_t errlen)
{
	int r;

	if (d->sw)
		return 0;
	r = vio_switch_new(NULL, &d->sw);
	return r ? fail(err, errlen, r, "cannot make the switch: %s", strerror(-r)) : 0;
}

int viod_add_net(struct viod *d, const struct net_spec *sp, char *err, size_t errlen)
{
	const char *name = sp->name[0] ? sp->name : sp->sock;
	struct vio_net_opts no = {
		.name = name, .queue_pairs = sp->queues, .mac = sp->has_mac ? sp->mac : NULL,
		.mtu = sp->mtu,
	};
	struct viod_dev *v;
	int r;

	r = check_unique(d, name, sp->sock, err, errlen);
	if (!r)
		r = ensure_switch(d, err, errlen);
	if (r)
		return r;
	no.sw = d->sw;
	/* RX/TX pairs and the control queue. */
	v = dev_alloc(d, VIOD_NET, name, 2 * sp->queues + 1);
	if (!v)
		return fail(err, errlen, -ENOMEM, "out of memory");
	v->spec.net = *sp;
	r = vio_net_new(&no, &v->net);
	if (r) {
		dev_release(v);
		return fail(err, errlen, r, "cannot make a net port: %s%s", strerror(-r),
			    r == -ENOSPC ? " (the switch is full)" : "");
	}
	vio_net_set_qos(v->net, &(struct vio_net_qos){ .pps = sp->pps, .pps_burst = sp->pps_burst,
						       .bps = sp->bitrate,
						       .bps_burst = sp->bitrate_burst });
	r = serve(d, v, sp->sock, sp->client, err, errlen);
	if (r) {
		vio_net_free(v->net);
		dev_release(v);
		return r;
	}
	dev_link(d, v);
	dlog(VIO_LOG_INFO, v->name, "%s switch port %u, %u queue pair%s on %s",
	     sp->client ? "connecting for" : "serving", vio_net_port(v->net), sp->queues,
	     sp->queues == 1 ? "" : "s", sp->sock);
	return 0;
}

int viod_add_tap(struct viod *d, const struct tap_spec *sp, char *err, size_t errlen)
{
	struct vio_poll_queue pq = { .q = 0, .vq = NULL, .kick_fd = -1 };
	struct viod_dev *v;
	int r;

	r = check_unique(d, sp->ifname, NULL, err, errlen);
	if (!r)
		r = ensure_switch(d, err, errlen);
	if (r)
		return r;
	v = dev_alloc(d, VIOD_TAP, sp->ifname, 1);
	if (!v)
		return fail(err, errlen, -ENOMEM, "out of memory");
	v->spec.tap = *sp;
	r = vio_tap_new(d->sw, sp->ifname, &v->tap);
	if (r) {
		dev_release(v);
		return fail(err, errlen, r, "cannot open the tap %s: %s%s", sp->ifname, strerror(-r),
			    r == -EPERM ? " (needs CAP_NET_ADMIN)" : "");
	}
	pq.vdev = vio_tap_vdev(v->tap);
	pq.name = v->qnames[0];
	pq.group = d->sw;
	r = vio_poller_add(d->poller, &pq);
	if (r) {
		vio_tap_free(v->tap);
		dev_release(v);
		return fail(err, errlen, r, "cannot poll the tap %s: %s", sp->ifname, strerror(-r));
	}
	v->connected = true;
	dev_link(d, v);
	dlog(VIO_LOG_INFO, v->name, "tap, switch port %u", vio_tap_port(v->tap));
	return 0;
}

/* ---- delete ---- */

void viod_delete(struct viod *d, struct viod_dev *dev)
{
	struct viod_dev **p = &d->devs;

	while (*p && *p != dev)
		p = &(*p)->next;
	if (!*p)
		return;
	*p = dev->next;
	d->ndevs--;
	if (dev->backend) {
		viod_watch_backend(d, dev, false);
		/* Freeing the backend stops its queues, which completes what is in flight. */
		vio_vhu_backend_free(dev->backend);
	}
	switch (dev->type) {
	case VIOD_BLK:
		vio_blk_free(dev->blk);
		break;
	case VIOD_NET:
		vio_net_free(dev->net);
		break;
	case VIOD_TAP:
		vio_poller_remove(d->poller, dev->tap, 0);
		vio_tap_free(dev->tap);
		break;
	}
	dlog(VIO_LOG_INFO, dev->name, "deleted");
	dev_release(dev);
	if (d->poller)
		vio_poller_rebalance(d->poller);
}

void viod_delete_all(struct viod *d)
{
	/* Backends first, so that no queue of a net port is left attached to the switch. */
	while (d->devs)
		viod_delete(d, d->devs);
	vio_switch_free(d->sw);
	d->sw = NULL;
}
