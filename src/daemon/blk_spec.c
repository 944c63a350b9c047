/* SPDX-License-Identifier: MIT */
/*
 * Parser for viod's --blk descriptions. Every rejection names the offending
 * key or value, since operators script against this syntax. Pure: no I/O.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blk_spec.h"
#include "util/parse_num.h"

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int set_string(char *dst, size_t cap, const char *key, const char *val, char *err,
		      size_t errlen)
{
	if (!val || !*val)
		return fail(err, errlen, "'%s' needs a value (%s=...)", key, key);
	if (*dst)
		return fail(err, errlen, "'%s' given twice", key);
	if (strlen(val) >= cap)
		return fail(err, errlen, "'%s' is too long (at most %zu characters)", key, cap - 1);
	strcpy(dst, val);
	return 0;
}

static int parse_pair(char *key, char *val, struct blk_spec *spec, char *err, size_t errlen)
{
	if (!strcmp(key, "sock"))
		return set_string(spec->sock, sizeof(spec->sock), key, val, err, errlen);
	if (!strcmp(key, "file"))
		return set_string(spec->file, sizeof(spec->file), key, val, err, errlen);
	if (!strcmp(key, "serial"))
		return set_string(spec->serial, sizeof(spec->serial), key, val, err, errlen);
	if (!strcmp(key, "name"))
		return set_string(spec->name, sizeof(spec->name), key, val, err, errlen);
	if (!strcmp(key, "offset") || !strcmp(key, "length")) {
		bool off = key[0] == 'o';
		bool *given = off ? &spec->has_offset : &spec->has_length;
		uint64_t *v = off ? &spec->offset : &spec->length;

		if (*given)
			return fail(err, errlen, "'%s' given twice", key);
		if (!val || parse_size(val, off ? 0 : 512, UINT64_MAX, v))
			return fail(err, errlen, "%s=%s: not a size (like 0, 1M or 10G)", key,
				    val ? val : "");
		if (*v % 512)
			return fail(err, errlen, "%s=%s: not a multiple of 512 bytes", key, val);
		*given = true;
		return 0;
	}
	if (!strcmp(key, "ram") || !strcmp(key, "null")) {
		uint64_t *size = key[0] == 'r' ? &spec->ram_size : &spec->null_size;

		if (*size)
			return fail(err, errlen, "'%s' given twice", key);
		if (!val || parse_size(val, 1, UINT64_MAX, size))
			return fail(err, errlen, "%s=%s: not a size (like 512M, 4GiB or 1T)", key,
				    val ? val : "");
		if (*size % 512)
			return fail(err, errlen, "%s=%s: not a multiple of 512 bytes", key, val);
		return 0;
	}
	{
		static const char *const names[] = { "iops", "iops_burst", "bps", "bps_burst" };
		uint64_t *const f[] = { &spec->iops, &spec->iops_burst, &spec->bps, &spec->bps_burst };
		int r = parse_rate_key(key, val, names, f, 4, "5000 or 100M", err, errlen);

		if (r <= 0)
			return r;
	}
	if (!strcmp(key, "queues")) {
		uint64_t n;

		if (!val || !*val)
			return fail(err, errlen, "'queues' needs a value (queues=N)");
		if (spec->queues)
			return fail(err, errlen, "'queues' given twice");
		if (parse_count(val, 1, BLK_SPEC_MAX_QUEUES, &n))
			return fail(err, errlen, "queues=%s: expected 1 to %d", val, BLK_SPEC_MAX_QUEUES);
		spec->queues = (unsigned)n;
		return 0;
	}
	if (!strcmp(key, "readonly") || !strcmp(key, "direct") || !strcmp(key, "client") ||
	    !strcmp(key, "shared")) {
		bool *flag = key[0] == 'r' ? &spec->readonly : key[0] == 'd' ? &spec->direct :
			     key[0] == 'c' ? &spec->client : &spec->shared;

		if (val)
			return fail(err, errlen, "'%s' takes no value", key);
		if (*flag)
			return fail(err, errlen, "'%s' given twice", key);
		*flag = true;
		return 0;
	}
	return fail(err, errlen, "unknown key '%s' (known: sock, name, file, ram, null, queues, "
		    "readonly, direct, serial, client, offset, length, shared, iops, iops_burst, bps, "
		    "bps_burst)", key);
}

int blk_spec_parse(const char *text, struct blk_spec *spec, char *err, size_t errlen)
{
	char buf[8192];
	char *save = NULL, *tok;

	memset(spec, 0, sizeof(*spec));
	if (strlen(text) >= sizeof(buf))
		return fail(err, errlen, "description too long");
	strcpy(buf, text);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		int ret;

		if (eq)
			*eq = '\0';
		ret = parse_pair(tok, eq ? eq + 1 : NULL, spec, err, errlen);
		if (ret)
			return ret;
	}
	if (!*spec->sock)
		return fail(err, errlen, "missing sock=PATH");
	if (!!*spec->file + !!spec->ram_size + !!spec->null_size != 1)
		return fail(err, errlen, "give exactly one of file=PATH, ram=SIZE or null=SIZE");
	if (spec->direct && !*spec->file)
		return fail(err, errlen, "'direct' applies to file= only");
	if (spec->shared && !*spec->file)
		return fail(err, errlen, "'shared' applies to file= only");
	if ((spec->has_offset || spec->has_length) && !*spec->file)
		return fail(err, errlen, "'offset' and 'length' apply to file= only");
	if (!spec->queues)
		spec->queues = 1;
	return 0;
}
