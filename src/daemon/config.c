/* SPDX-License-Identifier: MIT */
/*
 * viod's configuration file: a JSON object (parsed with json-c) with the
 * same settings as the command line and the devices to serve at start, in
 * the command line's own description grammar. Every unknown key, wrong type
 * or bad value is refused with a message naming it; nothing is half applied
 * (the caller exits on error).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "util/parse_num.h"

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int get_uint(struct json_object *v, const char *key, uint64_t min, uint64_t max,
		    uint64_t *out, char *err, size_t errlen)
{
	int64_t n;

	if (!json_object_is_type(v, json_type_int))
		return fail(err, errlen, "\"%s\": expected a number", key);
	n = json_object_get_int64(v);
	if (n < 0 || (uint64_t)n < min || (uint64_t)n > max)
		return fail(err, errlen, "\"%s\": %lld is not in %llu..%llu", key, (long long)n,
			    (unsigned long long)min, (unsigned long long)max);
	*out = (uint64_t)n;
	return 0;
}

static int get_str(struct json_object *v, const char *key, char *dst, size_t cap, char *err,
		   size_t errlen)
{
	const char *s;

	if (!json_object_is_type(v, json_type_string))
		return fail(err, errlen, "\"%s\": expected a string", key);
	s = json_object_get_string(v);
	if (strlen(s) >= cap)
		return fail(err, errlen, "\"%s\": too long (at most %zu characters)", key, cap - 1);
	strcpy(dst, s);
	return 0;
}

/* Append one device description (a string in the command line's grammar) to opts. */
static int add_device(struct viod_opts *o, const char *kind, const char *text, char *err,
		      size_t errlen)
{
	char why[4200];
	void *p;

	if (!strcmp(kind, "blk")) {
		p = realloc(o->blks, (o->nblks + 1) * sizeof(*o->blks));
		if (!p)
			return -ENOMEM;
		o->blks = p;
		if (blk_spec_parse(text, &o->blks[o->nblks], why, sizeof(why)))
			return fail(err, errlen, "blk '%.200s': %s", text, why);
		o->nblks++;
	} else if (!strcmp(kind, "net")) {
		p = realloc(o->nets, (o->nnets + 1) * sizeof(*o->nets));
		if (!p)
			return -ENOMEM;
		o->nets = p;
		if (net_spec_parse(text, &o->nets[o->nnets], why, sizeof(why)))
			return fail(err, errlen, "net '%.200s': %s", text, why);
		o->nnets++;
	} else {
		p = realloc(o->taps, (o->ntaps + 1) * sizeof(*o->taps));
		if (!p)
			return -ENOMEM;
		o->taps = p;
		if (tap_spec_parse(text, &o->taps[o->ntaps], why, sizeof(why)))
			return fail(err, errlen, "tap '%.200s': %s", text, why);
		o->ntaps++;
	}
	return 0;
}

static int devices(struct viod_opts *o, struct json_object *v, const char *kind, char *err,
		   size_t errlen)
{
	if (!json_object_is_type(v, json_type_array))
		return fail(err, errlen, "\"%s\": expected an array of descriptions", kind);
	for (size_t i = 0; i < json_object_array_length(v); i++) {
		struct json_object *e = json_object_array_get_idx(v, i);
		int r;

		if (!json_object_is_type(e, json_type_string))
			return fail(err, errlen, "\"%s\"[%zu]: expected a description string like "
				    "\"sock=/run/vm1.sock,...\"", kind, i);
		r = add_device(o, kind, json_object_get_string(e), err, errlen);
		if (r)
			return r;
	}
	return 0;
}

int viod_config_cpus(const char *text, struct viod_opts *o, char *err, size_t errlen)
{
	char buf[512], *save = NULL, *tok;
	uint64_t v;

	if (strlen(text) >= sizeof(buf))
		return fail(err, errlen, "CPU list too long");
	strcpy(buf, text);
	o->ncpus = 0;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (o->ncpus == sizeof(o->cpus) / sizeof(o->cpus[0]))
			return fail(err, errlen, "more than %zu CPUs",
				    sizeof(o->cpus) / sizeof(o->cpus[0]));
		if (parse_count(tok, 0, 4095, &v))
			return fail(err, errlen, "'%s' is not a CPU number", tok);
		o->cpus[o->ncpus++] = (int)v;
	}
	return o->ncpus ? 0 : fail(err, errlen, "an empty CPU list");
}

static int one(struct viod_opts *o, const char *key, struct json_object *v, char *err,
	       size_t errlen)
{
	uint64_t n;
	int r;

	if (!strcmp(key, "threads")) {
		r = get_uint(v, key, 1, 64, &n, err, errlen);
		o->threads = (unsigned)n;
	} else if (!strcmp(key, "poll_us")) {
		r = get_uint(v, key, 0, 1000000, &n, err, errlen);
		o->poll_us = (unsigned)n;
	} else if (!strcmp(key, "cpus")) {
		char list[512] = "";
		size_t off = 0;

		if (!json_object_is_type(v, json_type_array))
			return fail(err, errlen, "\"cpus\": expected an array of CPU numbers");
		for (size_t i = 0; i < json_object_array_length(v) && off < sizeof(list); i++)
			off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s", i ? "," : "",
						json_object_get_string(json_object_array_get_idx(v, i)));
		r = viod_config_cpus(list, o, err, errlen);
	} else if (!strcmp(key, "max_guest_mem")) {
		if (json_object_is_type(v, json_type_string)) {
			r = parse_size(json_object_get_string(v), 1u << 20, 1ull << 46, &o->max_guest_mem);
			if (r)
				return fail(err, errlen, "\"max_guest_mem\": expected a size from 1M to 64T");
		} else {
			r = get_uint(v, key, 1u << 20, 1ull << 46, &o->max_guest_mem, err, errlen);
		}
	} else if (!strcmp(key, "socket_mode") || !strcmp(key, "rpc_mode")) {
		char s[16], *end;
		unsigned long m;

		r = get_str(v, key, s, sizeof(s), err, errlen);
		if (r)
			return r;
		m = strtoul(s, &end, 8);
		if (!*s || *end || m > 0777 || (m & 0600) != 0600)
			return fail(err, errlen, "\"%s\": '%s' is not octal permissions that keep the "
				    "owner's read and write (like \"0660\")", key, s);
		*(key[0] == 's' ? &o->socket_mode : &o->rpc_mode) = (unsigned)m;
	} else if (!strcmp(key, "rpc")) {
		r = get_str(v, key, o->rpc_path, sizeof(o->rpc_path), err, errlen);
		o->rpc_given = true;
	} else if (!strcmp(key, "prometheus_file")) {
		r = get_str(v, key, o->prom_file, sizeof(o->prom_file), err, errlen);
	} else if (!strcmp(key, "prometheus_interval_s")) {
		r = get_uint(v, key, 1, 86400, &n, err, errlen);
		o->prom_interval_s = (unsigned)n;
	} else if (!strcmp(key, "log_level")) {
		static const char *const names[] = { "error", "warning", "info", "debug" };
		char s[16];
		unsigned i;

		r = get_str(v, key, s, sizeof(s), err, errlen);
		if (r)
			return r;
		for (i = 0; i < 4 && strcmp(s, names[i]); i++)
			;
		if (i == 4)
			return fail(err, errlen, "\"log_level\": '%s': expected error, warning, info "
				    "or debug", s);
		o->log_level = (enum vio_log_level)i;
	} else if (!strcmp(key, "blk") || !strcmp(key, "net") || !strcmp(key, "tap")) {
		r = devices(o, v, key, err, errlen);
	} else {
		r = fail(err, errlen, "unknown key \"%s\" (known: threads, poll_us, cpus, "
			 "max_guest_mem, socket_mode, rpc, rpc_mode, prometheus_file, prometheus_interval_s, "
			 "log_level, blk, net, tap)", key);
	}
	return r;
}

#define CONFIG_MAX_BYTES (16u << 20)

/* The file as JSON, or NULL with the reason (and for a syntax error its line) in err. */
static struct json_object *read_json(const char *path, char *err, size_t errlen)
{
	struct json_tokener *tok;
	struct json_object *root = NULL;
	FILE *f = fopen(path, "r");
	char *text;
	size_t len;

	if (!f) {
		fail(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	text = malloc(CONFIG_MAX_BYTES + 1);
	len = text ? fread(text, 1, CONFIG_MAX_BYTES + 1, f) : 0;
	fclose(f);
	if (!text || len > CONFIG_MAX_BYTES) {
		fail(err, errlen, "%s: %s", path, text ? "larger than 16 MiB" : "out of memory");
		free(text);
		return NULL;
	}
	tok = json_tokener_new();
	if (tok)
		root = json_tokener_parse_ex(tok, text, (int)len);
	if (tok && (!root || json_tokener_get_error(tok) != json_tokener_success)) {
		/* Where the parser stopped: the line (and column) an editor shows. */
		size_t end = (size_t)json_tokener_get_parse_end(tok), line = 1, col = 1;
		enum json_tokener_error e = json_tokener_get_error(tok);

		for (size_t i = 0; i < end && i < len; i++, col++)
			if (text[i] == '\n') {
				line++;
				col = 0;
			}
		fail(err, errlen, "%s:%zu:%zu: not valid JSON: %s", path, line, col,
		     e == json_tokener_continue ? "the text ends before the JSON value does" :
						  json_tokener_error_desc(e));
		json_object_put(root);
		root = NULL;
	} else if (!tok) {
		fail(err, errlen, "%s: out of memory", path);
	} else {
		for (size_t i = (size_t)json_tokener_get_parse_end(tok); i < len; i++)
			if (!strchr(" \t\r\n", text[i])) {
				fail(err, errlen, "%s: text after the JSON object (at byte %zu)", path, i);
				json_object_put(root);
				root = NULL;
				break;
			}
	}
	json_tokener_free(tok);
	free(text);
	return root;
}

int viod_config_load(const char *path, struct viod_opts *o, char *err, size_t errlen)
{
	struct json_object *root = read_json(path, err, errlen);
	int r = 0;

	if (!root)
		return -EINVAL;
	if (!json_object_is_type(root, json_type_object)) {
		json_object_put(root);
		return fail(err, errlen, "%s: expected a JSON object at the top", path);
	}
	json_object_object_foreach(root, key, val) {
		char why[4400];

		r = one(o, key, val, why, sizeof(why));
		if (r) {
			snprintf(err, errlen, "%s: %s", path, why);
			break;
		}
	}
	json_object_put(root);
	return r;
}
