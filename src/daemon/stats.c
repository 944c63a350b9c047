/* SPDX-License-Identifier: MIT */
/*
 * viod's statistics (see stats.h). It only reads: counters are loaded one by
 * one (each atomically, the set is not a snapshot) from objects the control
 * thread keeps alive while it reads them.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dlog.h"
#include "stats.h"

#define J_U64(o, k, v) json_object_object_add(o, k, json_object_new_uint64(v))
#define J_STR(o, k, v) json_object_object_add(o, k, json_object_new_string(v))
#define J_BOOL(o, k, v) json_object_object_add(o, k, json_object_new_boolean(v))

static const char *backing(const struct viod_dev *dev)
{
	const struct blk_spec *sp = &dev->spec.blk;

	return sp->file[0] ? "file" : sp->null_size ? "null" : "ram";
}

struct json_object *viod_dev_info(struct viod_dev *dev)
{
	struct json_object *o = json_object_new_object();

	J_STR(o, "name", dev->name);
	J_STR(o, "type", viod_dev_type_str(dev->type));
	J_BOOL(o, "connected", dev->connected);
	if (dev->backend) {
		J_U64(o, "status", vio_vhu_backend_status(dev->backend));
		J_U64(o, "running_queues", vio_vhu_backend_running_queues(dev->backend));
	}
	switch (dev->type) {
	case VIOD_BLK: {
		const struct blk_spec *sp = &dev->spec.blk;
		struct vio_blk_qos qos;

		J_STR(o, "socket", sp->sock);
		J_BOOL(o, "client", sp->client);
		J_STR(o, "backing", backing(dev));
		if (sp->file[0])
			J_STR(o, "file", sp->file);
		J_U64(o, "size", vio_blk_capacity_bytes(dev->blk));
		J_U64(o, "queues", sp->queues);
		J_BOOL(o, "readonly", sp->readonly);
		J_BOOL(o, "direct", sp->direct);
		J_BOOL(o, "shared", sp->shared);
		if (sp->has_offset || sp->has_length) {
			J_U64(o, "offset", sp->offset);
			J_U64(o, "length", vio_blk_capacity_bytes(dev->blk));
		}
		vio_blk_get_qos(dev->blk, &qos);
		struct json_object *q = json_object_new_object();

		J_U64(q, "iops", qos.iops);
		J_U64(q, "iops_burst", qos.iops_burst);
		J_U64(q, "bps", qos.bps);
		J_U64(q, "bps_burst", qos.bps_burst);
		json_object_object_add(o, "qos", q);
		break;
	}
	case VIOD_NET: {
		const struct net_spec *sp = &dev->spec.net;
		char mac[18];

		J_STR(o, "socket", sp->sock);
		J_BOOL(o, "client", sp->client);
		J_U64(o, "queue_pairs", sp->queues);
		J_U64(o, "port", vio_net_port(dev->net));
		struct vio_net_qos nq;
		struct json_object *q = json_object_new_object();

		vio_net_get_qos(dev->net, &nq);
		J_U64(q, "pps", nq.pps);
		J_U64(q, "pps_burst", nq.pps_burst);
		J_U64(q, "bitrate", nq.bps);
		J_U64(q, "bitrate_burst", nq.bps_burst);
		json_object_object_add(o, "qos", q);
		if (sp->has_mac) {
			snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", sp->mac[0],
				 sp->mac[1], sp->mac[2], sp->mac[3], sp->mac[4], sp->mac[5]);
			J_STR(o, "mac", mac);
		}
		break;
	}
	case VIOD_TAP:
		J_STR(o, "ifname", dev->spec.tap.ifname);
		J_U64(o, "port", vio_tap_port(dev->tap));
		break;
	}
	return o;
}

static struct json_object *blk_stats_json(const struct vio_blk_stats *st)
{
	struct json_object *o = json_object_new_object(), *ops = json_object_new_object();
	struct json_object *err = json_object_new_object(), *lat = json_object_new_array();
	uint64_t total = 0;

	for (unsigned i = 0; i < VIO_BLK_OP_COUNT; i++) {
		J_U64(ops, vio_blk_op_str(i), st->ops[i]);
		total += st->ops[i];
	}
	for (unsigned i = 0; i < VIO_BLK_ERR_COUNT; i++)
		J_U64(err, vio_blk_err_str(i), st->errors[i]);
	for (unsigned i = 0; i < VIO_BLK_LAT_BUCKETS; i++)
		json_object_array_add(lat, json_object_new_uint64(st->latency[i]));
	J_U64(o, "requests", total);
	json_object_object_add(o, "ops", ops);
	J_U64(o, "read_bytes", st->read_bytes);
	J_U64(o, "write_bytes", st->write_bytes);
	json_object_object_add(o, "errors", err);
	J_U64(o, "throttled", st->throttled);
	/* latency_us[i]: requests that took [2^i, 2^(i+1)) us (i = 0: under 2 us). */
	json_object_object_add(o, "latency_us_log2", lat);
	J_U64(o, "latency_sum_us", st->latency_sum_ns / 1000);
	return o;
}

static struct json_object *queue_stats(struct viod_dev *dev, unsigned q)
{
	struct json_object *o = json_object_new_object();
	struct vio_poll_queue_stats ps;
	const void *key = dev->type == VIOD_BLK ? (const void *)dev->blk :
			  dev->type == VIOD_NET ? (const void *)dev->net : (const void *)dev->tap;
	bool polled = vio_poller_queue_stats(dev->d->poller, key, q, &ps) == 0;

	J_U64(o, "index", q);
	J_BOOL(o, "running", polled);
	if (polled) {
		J_U64(o, "thread", ps.thread);
		J_U64(o, "kicks", ps.kicks);
		J_U64(o, "busy_polls", ps.polls);
	}
	if (q < VIO_VHU_MAX_QUEUES && dev->vqs[q]) {
		struct vio_virtq_stats vs;

		vio_virtq_get_stats(dev->vqs[q], &vs);
		J_U64(o, "buffers", vs.buffers);
		J_U64(o, "interrupts", vs.notifies);
		J_U64(o, "interrupts_suppressed", vs.suppressed);
		J_BOOL(o, "broken", vio_virtq_is_broken(dev->vqs[q]));
		if (vio_virtq_is_broken(dev->vqs[q]))
			J_STR(o, "fault", vio_virtq_fault_str(vio_virtq_fault_reason(dev->vqs[q])));
	}
	if (dev->type == VIOD_BLK) {
		struct vio_blk_stats st;

		if (vio_blk_get_stats(dev->blk, (int)q, &st) == 0)
			json_object_object_add(o, "blk", blk_stats_json(&st));
	}
	return o;
}

static struct json_object *port_stats(struct vio_switch *sw, unsigned port)
{
	struct vio_net_port_stats st;
	struct json_object *o, *drops;

	if (!sw || vio_switch_port_stats(sw, port, &st, NULL, 0))
		return NULL;
	o = json_object_new_object();
	drops = json_object_new_object();
	J_U64(o, "rx_packets", st.rx_packets);
	J_U64(o, "rx_bytes", st.rx_bytes);
	J_U64(o, "tx_packets", st.tx_packets);
	J_U64(o, "tx_bytes", st.tx_bytes);
	J_U64(o, "tx_throttled", st.tx_throttled);
	for (unsigned i = 0; i < VIO_NET_DROP_COUNT; i++)
		J_U64(drops, vio_net_drop_str(i), st.drops[i]);
	json_object_object_add(o, "drops", drops);
	return o;
}

/* The vIOMMU's traffic on this device's connection (docs/viommu.md). */
static struct json_object *iotlb_stats(const struct vio_vhu_backend *b)
{
	struct json_object *o = json_object_new_object();
	struct vio_vhu_iotlb_stats st;

	vio_vhu_backend_iotlb_stats(b, &st);
	J_BOOL(o, "enabled", st.enabled);
	J_U64(o, "entries", st.entries);
	J_U64(o, "misses", st.misses);
	J_U64(o, "miss_msgs", st.miss_msgs);
	J_U64(o, "updates", st.updates);
	J_U64(o, "invalidates", st.invalidates);
	J_U64(o, "evictions", st.evictions);
	J_U64(o, "refused", st.refused);
	return o;
}

struct json_object *viod_dev_stats(struct viod_dev *dev)
{
	struct json_object *o = json_object_new_object(), *qs = json_object_new_array(), *p;

	J_STR(o, "name", dev->name);
	J_STR(o, "type", viod_dev_type_str(dev->type));
	J_BOOL(o, "connected", dev->connected);
	for (unsigned q = 0; q < dev->nqueues; q++)
		json_object_array_add(qs, queue_stats(dev, q));
	json_object_object_add(o, "queues", qs);
	if (dev->backend && dev->type == VIOD_BLK) /* the devices that offer ACCESS_PLATFORM */
		json_object_object_add(o, "iotlb", iotlb_stats(dev->backend));
	if (dev->type == VIOD_BLK) {
		struct vio_blk_stats st;

		vio_blk_get_stats(dev->blk, -1, &st);
		json_object_object_add(o, "blk", blk_stats_json(&st));
	} else {
		p = port_stats(dev->d->sw, dev->type == VIOD_NET ? vio_net_port(dev->net) :
								   vio_tap_port(dev->tap));
		if (p)
			json_object_object_add(o, "port", p);
	}
	return o;
}

/* ------------------------------------------------------------ Prometheus */

struct buf {
	char *p;
	size_t len, cap;
};

static void __attribute__((format(printf, 2, 3))) put(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if (b->p && b->len + (size_t)n < b->cap) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap ? b->cap * 2 : 65536;

		while (cap < b->len + (size_t)n + 1)
			cap *= 2;
		char *np = realloc(b->p, cap);

		if (!np)
			return;
		b->p = np;
		b->cap = cap;
	}
}

/* Label values escape backslash, quote and newline (the exposition format's rules). */
static const char *label(const char *s, char *out, size_t len)
{
	size_t k = 0;

	for (; *s && k + 2 < len; s++) {
		if (*s == '\\' || *s == '"' || *s == '\n') {
			out[k++] = '\\';
			out[k++] = *s == '\n' ? 'n' : *s;
		} else {
			out[k++] = *s;
		}
	}
	out[k] = '\0';
	return out;
}

static void metric_help(struct buf *b, const char *name, const char *type, const char *help)
{
	put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

char *viod_prometheus(struct viod *d)
{
	struct buf b = { 0 };
	char l[512];

	metric_help(&b, "viod_devices", "gauge", "Devices served.");
	put(&b, "viod_devices %u\n", d->ndevs);
	metric_help(&b, "viod_device_connected", "gauge", "1 while a front-end is connected.");
	for (struct viod_dev *v = d->devs; v; v = v->next)
		put(&b, "viod_device_connected{device=\"%s\",type=\"%s\"} %d\n",
		    label(v->name, l, sizeof(l)), viod_dev_type_str(v->type), v->connected);
	metric_help(&b, "viod_queue_kicks_total", "counter", "Kicks that woke a queue's thread.");
	metric_help(&b, "viod_queue_interrupts_total", "counter", "Interrupts sent to the driver.");
	metric_help(&b, "viod_queue_interrupts_suppressed_total", "counter",
		    "Interrupts the driver's event suppression made unnecessary.");
	for (struct viod_dev *v = d->devs; v; v = v->next) {
		for (unsigned q = 0; q < v->nqueues && q < VIO_VHU_MAX_QUEUES; q++) {
			struct vio_poll_queue_stats ps;
			struct vio_virtq_stats vs;
			const void *key = v->type == VIOD_BLK ? (const void *)v->blk :
					  v->type == VIOD_NET ? (const void *)v->net : (const void *)v->tap;

			label(v->name, l, sizeof(l));
			if (vio_poller_queue_stats(d->poller, key, q, &ps) == 0)
				put(&b, "viod_queue_kicks_total{device=\"%s\",queue=\"%u\"} %llu\n", l, q,
				    (unsigned long long)ps.kicks);
			if (!v->vqs[q])
				continue;
			vio_virtq_get_stats(v->vqs[q], &vs);
			put(&b, "viod_queue_interrupts_total{device=\"%s\",queue=\"%u\"} %llu\n", l, q,
			    (unsigned long long)vs.notifies);
			put(&b, "viod_queue_interrupts_suppressed_total{device=\"%s\",queue=\"%u\"} %llu\n",
			    l, q, (unsigned long long)vs.suppressed);
		}
	}
	metric_help(&b, "viod_blk_requests_total", "counter", "Block requests completed, by op.");
	metric_help(&b, "viod_blk_bytes_total", "counter", "Bytes read and written.");
	metric_help(&b, "viod_blk_errors_total", "counter", "Block requests failed, by cause.");
	metric_help(&b, "viod_blk_throttled_total", "counter", "Requests held back by QoS limits.");
	metric_help(&b, "viod_blk_latency_us", "histogram", "Block request latency, microseconds.");
	for (struct viod_dev *v = d->devs; v; v = v->next) {
		struct vio_blk_stats st;
		uint64_t cum = 0;

		if (v->type != VIOD_BLK)
			continue;
		label(v->name, l, sizeof(l));
		vio_blk_get_stats(v->blk, -1, &st);
		for (unsigned i = 0; i < VIO_BLK_OP_COUNT; i++)
			put(&b, "viod_blk_requests_total{device=\"%s\",op=\"%s\"} %llu\n", l,
			    vio_blk_op_str(i), (unsigned long long)st.ops[i]);
		put(&b, "viod_blk_bytes_total{device=\"%s\",dir=\"read\"} %llu\n", l,
		    (unsigned long long)st.read_bytes);
		put(&b, "viod_blk_bytes_total{device=\"%s\",dir=\"write\"} %llu\n", l,
		    (unsigned long long)st.write_bytes);
		for (unsigned i = 0; i < VIO_BLK_ERR_COUNT; i++)
			put(&b, "viod_blk_errors_total{device=\"%s\",cause=\"%s\"} %llu\n", l,
			    vio_blk_err_str(i), (unsigned long long)st.errors[i]);
		put(&b, "viod_blk_throttled_total{device=\"%s\"} %llu\n", l,
		    (unsigned long long)st.throttled);
		/* Bucket i holds [2^i, 2^(i+1)) us; the last one everything above: only +Inf bounds it. */
		for (unsigned i = 0; i + 1 < VIO_BLK_LAT_BUCKETS; i++) {
			cum += st.latency[i];
			put(&b, "viod_blk_latency_us_bucket{device=\"%s\",le=\"%llu\"} %llu\n", l,
			    (unsigned long long)(2ull << i), (unsigned long long)cum);
		}
		cum += st.latency[VIO_BLK_LAT_BUCKETS - 1];
		put(&b, "viod_blk_latency_us_bucket{device=\"%s\",le=\"+Inf\"} %llu\n", l,
		    (unsigned long long)cum);
		put(&b, "viod_blk_latency_us_sum{device=\"%s\"} %llu.%03u\n", l,
		    (unsigned long long)(st.latency_sum_ns / 1000), (unsigned)(st.latency_sum_ns % 1000));
		put(&b, "viod_blk_latency_us_count{device=\"%s\"} %llu\n", l, (unsigned long long)cum);
	}
	metric_help(&b, "viod_net_packets_total", "counter", "Frames switched, by direction.");
	metric_help(&b, "viod_net_bytes_total", "counter", "Bytes switched, by direction.");
	metric_help(&b, "viod_net_drops_total", "counter", "Frames dropped, by reason.");
	metric_help(&b, "viod_net_throttled_total", "counter",
		    "Times a port's frames began waiting for its rate limits.");
	for (struct viod_dev *v = d->devs; v; v = v->next) {
		struct vio_net_port_stats st;
		unsigned port;

		if (v->type == VIOD_BLK || !d->sw)
			continue;
		port = v->type == VIOD_NET ? vio_net_port(v->net) : vio_tap_port(v->tap);
		if (vio_switch_port_stats(d->sw, port, &st, NULL, 0))
			continue;
		label(v->name, l, sizeof(l));
		put(&b, "viod_net_packets_total{device=\"%s\",dir=\"rx\"} %llu\n", l,
		    (unsigned long long)st.rx_packets);
		put(&b, "viod_net_packets_total{device=\"%s\",dir=\"tx\"} %llu\n", l,
		    (unsigned long long)st.tx_packets);
		put(&b, "viod_net_bytes_total{device=\"%s\",dir=\"rx\"} %llu\n", l,
		    (unsigned long long)st.rx_bytes);
		put(&b, "viod_net_bytes_total{device=\"%s\",dir=\"tx\"} %llu\n", l,
		    (unsigned long long)st.tx_bytes);
		for (unsigned i = 0; i < VIO_NET_DROP_COUNT; i++)
			put(&b, "viod_net_drops_total{device=\"%s\",reason=\"%s\"} %llu\n", l,
			    vio_net_drop_str(i), (unsigned long long)st.drops[i]);
		put(&b, "viod_net_throttled_total{device=\"%s\"} %llu\n", l,
		    (unsigned long long)st.tx_throttled);
	}
	return b.p;
}

void viod_write_prom_file(struct viod *d)
{
	char tmp[4200];
	char *text = viod_prometheus(d);
	FILE *f;

	if (!text || !d->o.prom_file[0]) {
		free(text);
		return;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", d->o.prom_file);
	f = fopen(tmp, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0 || rename(tmp, d->o.prom_file) < 0) {
		static bool warned;

		if (!warned)
			dlog(VIO_LOG_WARN, NULL, "cannot write %s: %s", d->o.prom_file, strerror(errno));
		warned = true;
		unlink(tmp);
	}
	free(text);
}

/* One line per switch port: packets and bytes each way, drops by reason. */
static void print_port(struct viod *d, const struct viod_dev *v)
{
	struct vio_net_port_stats st;
	char line[640], drops[512] = "";
	unsigned port = v->type == VIOD_NET ? vio_net_port(v->net) : vio_tap_port(v->tap);
	size_t off = 0;

	if (!d->sw || vio_switch_port_stats(d->sw, port, &st, NULL, 0))
		return;
	for (unsigned i = 0; i < VIO_NET_DROP_COUNT && off < sizeof(drops); i++)
		if (st.drops[i])
			off += (size_t)snprintf(drops + off, sizeof(drops) - off, " %s=%llu",
						vio_net_drop_str(i), (unsigned long long)st.drops[i]);
	snprintf(line, sizeof(line), "port %u: rx_packets=%llu rx_bytes=%llu tx_packets=%llu "
		 "tx_bytes=%llu drops:%s", port, (unsigned long long)st.rx_packets,
		 (unsigned long long)st.rx_bytes, (unsigned long long)st.tx_packets,
		 (unsigned long long)st.tx_bytes, off ? drops : " none");
	vio_log_stderr("viod", VIO_LOG_INFO, v->name, line);
}

/* One line per disk: requests, bytes, errors, held back. */
static void print_blk(const struct viod_dev *v)
{
	struct vio_blk_stats st;
	char line[512];
	uint64_t n = 0;

	vio_blk_get_stats(v->blk, -1, &st);
	for (unsigned i = 0; i < VIO_BLK_OP_COUNT; i++)
		n += st.ops[i];
	snprintf(line, sizeof(line), "blk: requests=%llu read_bytes=%llu write_bytes=%llu "
		 "ioerr=%llu unsupported=%llu malformed=%llu throttled=%llu",
		 (unsigned long long)n, (unsigned long long)st.read_bytes,
		 (unsigned long long)st.write_bytes, (unsigned long long)st.errors[VIO_BLK_ERR_IOERR],
		 (unsigned long long)st.errors[VIO_BLK_ERR_UNSUPP],
		 (unsigned long long)st.errors[VIO_BLK_ERR_MALFORMED],
		 (unsigned long long)st.throttled);
	vio_log_stderr("viod", VIO_LOG_INFO, v->name, line);
}

void viod_print_counters(struct viod *d)
{
	/* Asked for (SIGUSR1, exit): printed whatever the log level. */
	for (struct viod_dev *v = d->devs; v; v = v->next) {
		if (v->type == VIOD_BLK)
			print_blk(v);
		else
			print_port(d, v);
	}
	if (d->poller && vio_poller_busy_ns(d->poller)) {
		char line[96];

		snprintf(line, sizeof(line), "busy_ns=%llu (in polls that found work)",
			 (unsigned long long)vio_poller_busy_ns(d->poller));
		vio_log_stderr("viod", VIO_LOG_INFO, "poller", line);
	}
}
