/* SPDX-License-Identifier: MIT */
/* vioctl's tables: one layout per command's answer, read from viod's JSON. */
#include <stdio.h>
#include <string.h>

#include "vioctl.h"

static const char *str(struct json_object *o, const char *k, const char *dflt)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) && v ? json_object_get_string(v) : dflt;
}

static unsigned long long num(struct json_object *o, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) && v ? (unsigned long long)json_object_get_uint64(v)
							 : 0;
}

static int flag(struct json_object *o, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) && v && json_object_get_boolean(v);
}

void ctl_size(unsigned long long bytes, char *buf, size_t len)
{
	static const char *const u[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = (double)bytes;
	unsigned i = 0;

	while (v >= 1024 && i + 1 < sizeof(u) / sizeof(u[0])) {
		v /= 1024;
		i++;
	}
	snprintf(buf, len, i && v < 10 && v != (unsigned long long)v ? "%.1f %s" : "%.0f %s", v,
		 u[i]);
}

/* What a device is, in a few words. */
static void what(struct json_object *d, char *buf, size_t len)
{
	const char *type = str(d, "type", "?");
	char size[32];

	if (!strcmp(type, "blk")) {
		ctl_size(num(d, "size"), size, sizeof(size));
		snprintf(buf, len, "%s %s%s%s, %llu queue%s%s", str(d, "backing", "?"), size,
			 flag(d, "readonly") ? " ro" : "", flag(d, "direct") ? " direct" : "",
			 num(d, "queues"), num(d, "queues") == 1 ? "" : "s",
			 str(d, "file", NULL) ? "" : "");
	} else if (!strcmp(type, "net")) {
		snprintf(buf, len, "port %llu, %llu pair%s%s%s", num(d, "port"), num(d, "queue_pairs"),
			 num(d, "queue_pairs") == 1 ? "" : "s", str(d, "mac", NULL) ? ", mac " : "",
			 str(d, "mac", ""));
	} else {
		snprintf(buf, len, "port %llu, tap %s", num(d, "port"), str(d, "ifname", "?"));
	}
}

static void print_list(struct json_object *res)
{
	struct json_object *devs;

	if (!json_object_object_get_ex(res, "devices", &devs) || !json_object_array_length(devs)) {
		printf("no devices\n");
		return;
	}
	printf("%-24s %-4s %-12s %-34s %s\n", "NAME", "TYPE", "STATE", "DEVICE", "SOCKET");
	for (size_t i = 0; i < json_object_array_length(devs); i++) {
		struct json_object *d = json_object_array_get_idx(devs, i);
		char w[128], state[32];
		unsigned long long st = num(d, "status");

		if (!strcmp(str(d, "type", ""), "tap"))
			snprintf(state, sizeof(state), "up");
		else
			snprintf(state, sizeof(state), "%s%s",
				 flag(d, "connected") ? (st & 4 ? "running" : "connected") : "waiting",
				 st & 64 ? "!reset" : "");
		what(d, w, sizeof(w));
		printf("%-24s %-4s %-12s %-34s %s\n", str(d, "name", "?"), str(d, "type", "?"), state, w,
		       str(d, "socket", "-"));
	}
}

static void print_device(struct json_object *d)
{
	char w[128];

	what(d, w, sizeof(w));
	printf("%s: %s %s\n", str(d, "name", "?"), str(d, "type", "?"), w);
}

static void print_qos(struct json_object *d)
{
	struct json_object *q;
	char bps[32], burst[32];

	if (!json_object_object_get_ex(d, "qos", &q))
		return;
	if (!strcmp(str(d, "type", ""), "net")) {
		printf("%s: ", str(d, "name", "?"));
		if (num(q, "pps"))
			printf("%llu frames/s (burst %llu)", num(q, "pps"), num(q, "pps_burst"));
		else
			printf("frame rate unlimited");
		if (num(q, "bitrate"))
			printf(", %llu bit/s (burst %llu bits)\n", num(q, "bitrate"),
			       num(q, "bitrate_burst"));
		else
			printf(", bit rate unlimited\n");
		return;
	}
	ctl_size(num(q, "bps"), bps, sizeof(bps));
	ctl_size(num(q, "bps_burst"), burst, sizeof(burst));
	printf("%s: ", str(d, "name", "?"));
	if (num(q, "iops"))
		printf("%llu IOPS (burst %llu)", num(q, "iops"), num(q, "iops_burst"));
	else
		printf("IOPS unlimited");
	if (num(q, "bps"))
		printf(", %s/s (burst %s)\n", bps, burst);
	else
		printf(", bandwidth unlimited\n");
}

void ctl_print(const char *cmd, struct json_object *res)
{
	if (!strcmp(cmd, "list")) {
		print_list(res);
	} else if (!strcmp(cmd, "create") || !strcmp(cmd, "resize")) {
		print_device(res);
	} else if (!strcmp(cmd, "qos")) {
		print_qos(res);
	} else if (!strcmp(cmd, "delete")) {
		printf("deleted\n");
	} else if (!strcmp(cmd, "log")) {
		printf("log level: %s\n", str(res, "level", "?"));
	} else if (!strcmp(cmd, "version")) {
		printf("viod %s, up %llu s\n", str(res, "version", "?"), num(res, "uptime_s"));
	} else if (!strcmp(cmd, "threads")) {
		struct json_object *a;

		if (!json_object_object_get_ex(res, "threads", &a))
			return;
		printf("%-7s %-7s %s\n", "THREAD", "QUEUES", "CPU");
		for (size_t i = 0; i < json_object_array_length(a); i++) {
			struct json_object *t = json_object_array_get_idx(a, i);

			printf("%-7llu %-7llu %s\n", num(t, "thread"), num(t, "queues"),
			       str(t, "cpu", "any"));
		}
	}
}
