/* SPDX-License-Identifier: MIT */
/*
 * vioctl stats: every device's counters as a table (per device, then per
 * queue), refreshed with rates per second under --watch, or viod's
 * Prometheus text with --prometheus.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vioctl.h"

#define MAX_DEVS 4096

static unsigned long long num(struct json_object *o, const char *k)
{
	struct json_object *v;

	return o && json_object_object_get_ex(o, k, &v) && v ?
		       (unsigned long long)json_object_get_uint64(v) : 0;
}

static struct json_object *obj(struct json_object *o, const char *k)
{
	struct json_object *v;

	return o && json_object_object_get_ex(o, k, &v) ? v : NULL;
}

static unsigned long long sum_values(struct json_object *o)
{
	unsigned long long n = 0;

	if (!o)
		return 0;
	json_object_object_foreach(o, k, v) {
		(void)k;
		n += (unsigned long long)json_object_get_uint64(v);
	}
	return n;
}

/* The latency below which a fraction q of the histogram's requests finished (bucket's top). */
static unsigned long long percentile_us(struct json_object *lat, double q)
{
	unsigned long long total = 0, seen = 0;
	size_t n = lat ? json_object_array_length(lat) : 0;

	for (size_t i = 0; i < n; i++)
		total += (unsigned long long)json_object_get_uint64(json_object_array_get_idx(lat, i));
	if (!total)
		return 0;
	for (size_t i = 0; i < n; i++) {
		seen += (unsigned long long)json_object_get_uint64(json_object_array_get_idx(lat, i));
		if ((double)seen >= q * (double)total)
			return 2ull << i;
	}
	return 2ull << (n - 1);
}

struct prev {
	char name[128];
	unsigned long long a, b; /* requests / packets, bytes */
};

static struct prev prevs[MAX_DEVS];
static unsigned nprev;

static struct prev *prev_of(const char *name)
{
	for (unsigned i = 0; i < nprev; i++)
		if (!strcmp(prevs[i].name, name))
			return &prevs[i];
	if (nprev == MAX_DEVS)
		return NULL;
	snprintf(prevs[nprev].name, sizeof(prevs[nprev].name), "%s", name);
	return &prevs[nprev++];
}

static void print_device(struct json_object *d, double dt)
{
	const char *name = json_object_get_string(obj(d, "name"));
	const char *type = json_object_get_string(obj(d, "type"));
	struct json_object *blk = obj(d, "blk"), *port = obj(d, "port"), *qs = obj(d, "queues");
	struct json_object *iotlb = obj(d, "iotlb");
	struct prev *p = prev_of(name);
	unsigned long long a, b;
	char rd[32], wr[32];

	if (!strcmp(type, "blk")) {
		a = num(blk, "requests");
		b = num(blk, "read_bytes") + num(blk, "write_bytes");
		ctl_size(num(blk, "read_bytes"), rd, sizeof(rd));
		ctl_size(num(blk, "write_bytes"), wr, sizeof(wr));
		printf("%-24s blk  requests %-10llu read %-10s written %-10s errors %llu throttled %llu",
		       name, a, rd, wr, sum_values(obj(blk, "errors")), num(blk, "throttled"));
		if (a)
			printf(" p50 <%lluus p99 <%lluus", percentile_us(obj(blk, "latency_us_log2"), 0.5),
			       percentile_us(obj(blk, "latency_us_log2"), 0.99));
	} else {
		a = num(port, "rx_packets") + num(port, "tx_packets");
		b = num(port, "rx_bytes") + num(port, "tx_bytes");
		printf("%-24s %-4s rx %-10llu tx %-10llu rx_bytes %-12llu tx_bytes %-12llu drops %llu "
		       "throttled %llu", name, type, num(port, "rx_packets"), num(port, "tx_packets"),
		       num(port, "rx_bytes"), num(port, "tx_bytes"), sum_values(obj(port, "drops")),
		       num(port, "tx_throttled"));
	}
	if (dt > 0 && p) {
		ctl_size((unsigned long long)((double)(b - p->b) / dt), rd, sizeof(rd));
		printf("  | %.0f/s %s/s", (double)(a - p->a) / dt, rd);
	}
	if (p) {
		p->a = a;
		p->b = b;
	}
	printf("\n");
	/* The vIOMMU's traffic, once there was any (docs/viommu.md). */
	if (iotlb && (json_object_get_boolean(obj(iotlb, "enabled")) || num(iotlb, "updates")))
		printf("  iotlb entries %llu misses %llu (asked %llu) updates %llu invalidates %llu "
		       "evictions %llu refused %llu\n",
		       num(iotlb, "entries"), num(iotlb, "misses"), num(iotlb, "miss_msgs"),
		       num(iotlb, "updates"), num(iotlb, "invalidates"), num(iotlb, "evictions"),
		       num(iotlb, "refused"));
	for (size_t i = 0; qs && i < json_object_array_length(qs); i++) {
		struct json_object *q = json_object_array_get_idx(qs, i);

		if (!json_object_get_boolean(obj(q, "running")))
			continue;
		printf("  q%-3llu thread %llu kicks %llu interrupts %llu suppressed %llu%s%s\n",
		       num(q, "index"), num(q, "thread"), num(q, "kicks"), num(q, "interrupts"),
		       num(q, "interrupts_suppressed"), obj(q, "fault") ? " BROKEN: " : "",
		       obj(q, "fault") ? json_object_get_string(obj(q, "fault")) : "");
	}
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int ctl_stats(struct ctl *c, int argc, char **argv)
{
	const char *name = NULL;
	bool prom = false;
	int watch = 0;
	double last = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--prometheus")) {
			prom = true;
		} else if (!strcmp(argv[i], "--watch")) {
			watch = 1;
			if (i + 1 < argc && argv[i + 1][0] >= '1' && argv[i + 1][0] <= '9')
				watch = atoi(argv[++i]);
		} else if (argv[i][0] != '-' && !name) {
			name = argv[i];
		} else {
			fprintf(stderr, "vioctl: stats: unexpected '%s' (stats [NAME] [--watch [SECS]] "
				"[--prometheus])\n", argv[i]);
			return 2;
		}
	}
	for (;;) {
		struct json_object *params = NULL, *res = NULL, *devs;
		int r;

		if (!prom && name) {
			params = json_object_new_object();
			json_object_object_add(params, "name", json_object_new_string(name));
		}
		r = ctl_call(c, prom ? "prometheus" : "stats", params, &res);
		if (r)
			return r;
		if (prom) {
			fputs(json_object_get_string(obj(res, "text")), stdout);
		} else if (c->json) {
			printf("%s\n", json_object_to_json_string_ext(res, JSON_C_TO_STRING_PRETTY));
		} else {
			double t = now_s();

			if (watch)
				printf("\033[H\033[2J");
			devs = obj(res, "devices");
			for (size_t i = 0; devs && i < json_object_array_length(devs); i++)
				print_device(json_object_array_get_idx(devs, i), last ? t - last : 0);
			if (!devs || !json_object_array_length(devs))
				printf("no devices\n");
			last = t;
		}
		json_object_put(res);
		fflush(stdout);
		if (!watch)
			return 0;
		sleep((unsigned)watch);
	}
}
