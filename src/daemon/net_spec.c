/* SPDX-License-Identifier: MIT */
/*
 * Parser for viod's --net and --tap descriptions. Every rejection names the
 * offending key or value. Pure: no I/O.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net_spec.h"
#include "util/parse_num.h"
#include "vio/net.h"

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int parse_mac(const char *s, uint8_t mac[6])
{
	for (unsigned i = 0; i < 6; i++) {
		char *end;
		unsigned long v;

		if (!((s[0] >= '0' && s[0] <= '9') || (unsigned)((s[0] | 32) - 'a') < 6u))
			return -EINVAL;
		v = strtoul(s, &end, 16);
		if (end - s != 2 || v > 255 || (i < 5 ? *end != ':' : *end != '\0'))
			return -EINVAL;
		mac[i] = (uint8_t)v;
		s = end + 1;
	}
	return 0;
}

/* A COUNT of the one number grammar (docs/numbers.md) for key=val. */
static int parse_num(const char *key, const char *val, long min, long max, long *out, char *err,
		     size_t errlen)
{
	uint64_t n;

	if (!val || !*val)
		return fail(err, errlen, "'%s' needs a value (%s=N)", key, key);
	if (parse_count(val, (uint64_t)min, (uint64_t)max, &n))
		return fail(err, errlen, "%s=%s: expected a number from %ld to %ld", key, val, min,
			    max);
	*out = (long)n;
	return 0;
}

static int net_pair(char *key, char *val, struct net_spec *s, char *err, size_t errlen)
{
	long n = 0;

	if (!strcmp(key, "sock")) {
		if (!val || !*val)
			return fail(err, errlen, "'sock' needs a value (sock=PATH)");
		if (*s->sock)
			return fail(err, errlen, "'sock' given twice");
		if (strlen(val) >= sizeof(s->sock))
			return fail(err, errlen, "sock: path too long (at most %zu characters)",
				    sizeof(s->sock) - 1);
		strcpy(s->sock, val);
		return 0;
	}
	if (!strcmp(key, "name")) {
		if (!val || !*val)
			return fail(err, errlen, "'name' needs a value (name=NAME)");
		if (*s->name)
			return fail(err, errlen, "'name' given twice");
		if (strlen(val) >= sizeof(s->name))
			return fail(err, errlen, "name: too long (at most %zu characters)",
				    sizeof(s->name) - 1);
		strcpy(s->name, val);
		return 0;
	}
	if (!strcmp(key, "queues")) {
		if (parse_num(key, val, 1, VIO_NET_MAX_PAIRS, &n, err, errlen))
			return -EINVAL;
		s->queues = (unsigned)n;
		return 0;
	}
	if (!strcmp(key, "mtu")) {
		if (parse_num(key, val, 68, 65535, &n, err, errlen))
			return -EINVAL;
		s->mtu = (uint16_t)n;
		return 0;
	}
	if (!strcmp(key, "mac")) {
		if (!val || parse_mac(val, s->mac))
			return fail(err, errlen, "mac=%s: expected six hex bytes like 52:54:00:12:34:56",
				    val ? val : "");
		if (s->mac[0] & 1)
			return fail(err, errlen, "mac=%s: a multicast address", val);
		s->has_mac = true;
		return 0;
	}
	{
		static const char *const names[] = { "pps", "pps_burst", "bitrate", "bitrate_burst" };
		uint64_t *const f[] = { &s->pps, &s->pps_burst, &s->bitrate, &s->bitrate_burst };
		int r = parse_rate_key(key, val, names, f, 4, "10000 or 100M", err, errlen);

		if (r <= 0)
			return r;
	}
	if (!strcmp(key, "client")) {
		if (val)
			return fail(err, errlen, "'client' takes no value");
		s->client = true;
		return 0;
	}
	return fail(err, errlen, "unknown key '%s' (known: sock, name, queues, mac, mtu, client, pps, "
		    "pps_burst, bitrate, bitrate_burst)", key);
}

int net_spec_parse(const char *text, struct net_spec *spec, char *err, size_t errlen)
{
	char buf[1024];
	char *save = NULL, *tok;

	memset(spec, 0, sizeof(*spec));
	if (strlen(text) >= sizeof(buf))
		return fail(err, errlen, "description too long");
	strcpy(buf, text);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');

		if (eq)
			*eq = '\0';
		if (net_pair(tok, eq ? eq + 1 : NULL, spec, err, errlen))
			return -EINVAL;
	}
	if (!*spec->sock)
		return fail(err, errlen, "missing sock=PATH");
	if (!spec->queues)
		spec->queues = 1;
	return 0;
}

int tap_spec_parse(const char *text, struct tap_spec *spec, char *err, size_t errlen)
{
	const char *name;

	memset(spec, 0, sizeof(*spec));
	if (strncmp(text, "ifname=", 7))
		return fail(err, errlen, "expected ifname=NAME");
	name = text + 7;
	if (!*name || strlen(name) >= sizeof(spec->ifname) || strchr(name, ',') ||
	    strchr(name, '/') || strchr(name, ' '))
		return fail(err, errlen, "ifname=%s: not an interface name (1 to %zu characters)",
			    name, sizeof(spec->ifname) - 1);
	strcpy(spec->ifname, name);
	return 0;
}
