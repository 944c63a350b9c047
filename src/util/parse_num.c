/* SPDX-License-Identifier: MIT */
/*
 * The number grammar of parse_num.h. Pure: no I/O but the one message the
 * *_arg forms print to stderr, naming the option and the value.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "parse_num.h"

/* Leading decimal digits of s into *v; the first byte after them in *end. */
static int digits(const char *s, uint64_t *v, const char **end)
{
	uint64_t x = 0;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');

		if (x > (UINT64_MAX - d) / 10)
			return -ERANGE;
		x = x * 10 + d;
	}
	*v = x;
	*end = p;
	return 0;
}

int parse_count(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	const char *end;
	uint64_t v;
	int r = digits(s, &v, &end);

	if (r == 0 && *end)
		return -EINVAL;
	if (r)
		return r;
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

/* The unit after the digits: its shift, or -1. */
static int unit_shift(const char *u)
{
	static const char units[] = "KMGT";

	if (!*u || !strcasecmp(u, "B"))
		return 0;
	for (int i = 0; units[i]; i++) {
		if ((*u | 0x20) != (units[i] | 0x20))
			continue;
		if (!u[1] || !strcasecmp(u + 1, "B") || !strcasecmp(u + 1, "iB"))
			return 10 * (i + 1);
	}
	return -1;
}

int parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	const char *end;
	uint64_t v;
	int shift, r = digits(s, &v, &end);

	if (r == -EINVAL)
		return r;
	shift = unit_shift(r ? "" : end);
	if (r == 0 && shift < 0)
		return -EINVAL;
	if (r || (shift && v > (UINT64_MAX >> shift)))
		return -ERANGE;
	v <<= shift;
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

void format_size(uint64_t bytes, char *buf, size_t len)
{
	static const char *const names[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	unsigned i = 0;
	double v;

	if (bytes < 1024) {
		snprintf(buf, len, "%llu byte%s", (unsigned long long)bytes, bytes == 1 ? "" : "s");
		return;
	}
	v = (double)bytes / 1024;
	/* Move up while the value would print as 1024 or more at one decimal. */
	while (v >= 1023.95 && i + 1 < sizeof(names) / sizeof(names[0])) {
		v /= 1024;
		i++;
	}
	if (v == (double)(uint64_t)v)
		snprintf(buf, len, "%llu %s", (unsigned long long)v, names[i]);
	else
		snprintf(buf, len, "%.1f %s", v, names[i]);
}

int parse_count_arg(const char *prog, const char *what, const char *s, uint64_t min,
		    uint64_t max, uint64_t *out)
{
	int r = parse_count(s, min, max, out);

	if (r)
		fprintf(stderr, "%s: %s '%s': expected a number from %llu to %llu\n", prog, what, s,
			(unsigned long long)min, (unsigned long long)max);
	return r;
}

int parse_size_arg(const char *prog, const char *what, const char *s, uint64_t min,
		   uint64_t max, uint64_t *out)
{
	int r = parse_size(s, min, max, out);
	char lo[32], hi[32];

	if (r == -EINVAL) {
		fprintf(stderr, "%s: %s '%s': expected a size like 4096, 4K, 512MiB or 1G\n", prog,
			what, s);
	} else if (r) {
		format_size(min, lo, sizeof(lo));
		format_size(max, hi, sizeof(hi));
		fprintf(stderr, "%s: %s '%s': expected a size from %s to %s\n", prog, what, s, lo,
			hi);
	}
	return r;
}

int parse_uint_arg(const char *prog, const char *what, const char *s, unsigned min, unsigned max,
		   unsigned *out)
{
	uint64_t v;
	int r = parse_count_arg(prog, what, s, min, max, &v);

	if (r == 0)
		*out = (unsigned)v;
	return r;
}

int parse_rate_key(const char *key, const char *val, const char *const *names,
		   uint64_t *const *fields, unsigned n, const char *example, char *err,
		   size_t errlen)
{
	for (unsigned i = 0; i < n; i++) {
		if (strcmp(key, names[i]))
			continue;
		if (*fields[i]) {
			snprintf(err, errlen, "'%s' given twice", key);
			return -EINVAL;
		}
		if (!val || parse_size(val, 1, UINT64_MAX, fields[i])) {
			snprintf(err, errlen, "%s=%s: expected a rate above 0 (like %s)", key,
				 val ? val : "", example);
			return -EINVAL;
		}
		return 0;
	}
	return 1;
}
