/* SPDX-License-Identifier: MIT */
/*
 * The management API's methods (docs/rpc.md): create, delete, list, stats,
 * resize, qos, log, threads, version, help. Each checks its params in full
 * and answers an error object naming the bad field or value; none waits on
 * a front-end (deleting a device completes its in-flight I/O, as SIGTERM
 * does). Control thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rpc.h"
#include "rpc_methods.h"
#include "stats.h"
#include "util/parse_num.h"

#define ERR(code, ...) (snprintf(err, errlen, __VA_ARGS__), (code))

/* params must be an object (or absent when allowed): one check for every method. */
static int need_object(struct json_object *params, bool optional, char *err, size_t errlen)
{
	if (!params)
		return optional ? 0 : ERR(RPC_INVALID_PARAMS, "params are required (an object)");
	if (!json_object_is_type(params, json_type_object))
		return ERR(RPC_INVALID_PARAMS, "params must be an object with named fields");
	return 0;
}

/* A string field; NULL when absent, an error when present with another type. */
static int get_string(struct json_object *params, const char *key, bool required,
		      const char **out, char *err, size_t errlen)
{
	struct json_object *v;

	*out = NULL;
	if (!params || !json_object_object_get_ex(params, key, &v) || !v)
		return required ? ERR(RPC_INVALID_PARAMS, "missing \"%s\"", key) : 0;
	if (!json_object_is_type(v, json_type_string))
		return ERR(RPC_INVALID_PARAMS, "\"%s\" must be a string", key);
	*out = json_object_get_string(v);
	return 0;
}

/* A size field: a non-negative integer, or a string in the size grammar ("10G"). */
static int get_size(struct json_object *params, const char *key, bool *present, uint64_t *out,
		    char *err, size_t errlen)
{
	struct json_object *v;

	*present = false;
	if (!json_object_object_get_ex(params, key, &v) || !v)
		return 0;
	if (json_object_is_type(v, json_type_int)) {
		int64_t n = json_object_get_int64(v);

		if (n < 0)
			return ERR(RPC_INVALID_PARAMS, "\"%s\" must not be negative", key);
		*out = (uint64_t)n;
	} else if (!json_object_is_type(v, json_type_string) ||
		   parse_size(json_object_get_string(v), 0, UINT64_MAX, out)) {
		return ERR(RPC_INVALID_PARAMS, "\"%s\": expected a size (a number of bytes or a "
			   "string like 512M or 10G)", key);
	}
	*present = true;
	return 0;
}

static struct viod_dev *find_named(struct viod *d, struct json_object *params, char *err,
				   size_t errlen, int *code)
{
	const char *name;
	struct viod_dev *dev;

	*code = need_object(params, false, err, errlen);
	if (!*code)
		*code = get_string(params, "name", true, &name, err, errlen);
	if (*code)
		return NULL;
	dev = viod_find(d, name);
	if (!dev)
		*code = ERR(RPC_NOT_FOUND, "no device named %s (try list)", name);
	return dev;
}

static int m_version(void *ctx, struct json_object *params, struct json_object **result,
		     char *err, size_t errlen)
{
	struct viod *d = ctx;
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	*result = json_object_new_object();
	json_object_object_add(*result, "version", json_object_new_string(VIO_VERSION));
	json_object_object_add(*result, "uptime_s", json_object_new_uint64(
		((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec - d->started_ns) /
		1000000000u));
	return 0;
}

static int m_list(void *ctx, struct json_object *params, struct json_object **result,
		  char *err, size_t errlen)
{
	struct viod *d = ctx;
	struct json_object *a;
	int r = need_object(params, true, err, errlen);

	if (r)
		return r;
	a = json_object_new_array();
	for (struct viod_dev *v = d->devs; v; v = v->next)
		json_object_array_add(a, viod_dev_info(v));
	*result = json_object_new_object();
	json_object_object_add(*result, "devices", a);
	return 0;
}

static int m_create(void *ctx, struct json_object *params, struct json_object **result,
		    char *err, size_t errlen)
{
	struct viod *d = ctx;
	const char *type, *spec;
	char why[4400];
	int r = need_object(params, false, err, errlen);

	if (!r)
		r = get_string(params, "type", true, &type, err, errlen);
	if (!r)
		r = get_string(params, "spec", true, &spec, err, errlen);
	if (r)
		return r;
	if (!strcmp(type, "blk")) {
		struct blk_spec sp;

		if (blk_spec_parse(spec, &sp, why, sizeof(why)))
			return ERR(RPC_INVALID_PARAMS, "blk spec '%.200s': %s", spec, why);
		r = viod_add_blk(d, &sp, why, sizeof(why));
	} else if (!strcmp(type, "net")) {
		struct net_spec sp;

		if (net_spec_parse(spec, &sp, why, sizeof(why)))
			return ERR(RPC_INVALID_PARAMS, "net spec '%.200s': %s", spec, why);
		r = viod_add_net(d, &sp, why, sizeof(why));
	} else if (!strcmp(type, "tap")) {
		struct tap_spec sp;

		if (tap_spec_parse(spec, &sp, why, sizeof(why)))
			return ERR(RPC_INVALID_PARAMS, "tap spec '%.200s': %s", spec, why);
		r = viod_add_tap(d, &sp, why, sizeof(why));
	} else {
		return ERR(RPC_INVALID_PARAMS, "\"type\" '%.40s': expected blk, net or tap", type);
	}
	if (r)
		return ERR(r == -EEXIST ? RPC_EXISTS : RPC_FAILED, "%s", why);
	/* The new device is the last one. */
	for (struct viod_dev *v = d->devs; v; v = v->next)
		if (!v->next)
			*result = viod_dev_info(v);
	return 0;
}

static int m_delete(void *ctx, struct json_object *params, struct json_object **result,
		    char *err, size_t errlen)
{
	struct viod *d = ctx;
	int code;
	struct viod_dev *dev = find_named(d, params, err, errlen, &code);

	if (!dev)
		return code;
	viod_delete(d, dev);
	*result = NULL;
	return 0;
}

static int m_stats(void *ctx, struct json_object *params, struct json_object **result,
		   char *err, size_t errlen)
{
	struct viod *d = ctx;
	const char *name;
	struct json_object *a;
	int r = need_object(params, true, err, errlen);

	if (!r)
		r = get_string(params, "name", false, &name, err, errlen);
	if (r)
		return r;
	if (name && !viod_find(d, name))
		return ERR(RPC_NOT_FOUND, "no device named %s (try list)", name);
	a = json_object_new_array();
	for (struct viod_dev *v = d->devs; v; v = v->next)
		if (!name || !strcmp(name, v->name))
			json_object_array_add(a, viod_dev_stats(v));
	*result = json_object_new_object();
	json_object_object_add(*result, "devices", a);
	return 0;
}

static int m_prometheus(void *ctx, struct json_object *params, struct json_object **result,
			char *err, size_t errlen)
{
	char *text = viod_prometheus(ctx);

	if (!text)
		return ERR(RPC_INTERNAL_ERROR, "out of memory");
	*result = json_object_new_object();
	json_object_object_add(*result, "text", json_object_new_string(text));
	free(text);
	return 0;
}

static int m_resize(void *ctx, struct json_object *params, struct json_object **result,
		    char *err, size_t errlen)
{
	struct viod *d = ctx;
	int code, r;
	bool present;
	uint64_t size;
	struct viod_dev *dev = find_named(d, params, err, errlen, &code);

	if (!dev)
		return code;
	if (dev->type != VIOD_BLK)
		return ERR(RPC_INVALID_PARAMS, "%s is a %s device: only blk devices resize", dev->name,
			   viod_dev_type_str(dev->type));
	code = get_size(params, "size", &present, &size, err, errlen);
	if (code)
		return code;
	if (!present || size == 0)
		return ERR(RPC_INVALID_PARAMS, "missing \"size\" (bytes, or like 20G)");
	r = vio_blk_resize(dev->blk, size);
	if (r)
		return ERR(RPC_FAILED, "cannot resize %s to %llu bytes: %s%s", dev->name,
			   (unsigned long long)size, strerror(-r),
			   r == -EINVAL ? " (a multiple of the block size is needed)" :
			   r == -ENOSPC ? " (a RAM or null disk, a window or a block device cannot "
					  "grow past its store)" : "");
	/* The guest learns of it from the config; without the channel it sees it on next read. */
	r = vio_vhu_backend_config_changed(dev->backend);
	*result = viod_dev_info(dev);
	json_object_object_add(*result, "guest_notified", json_object_new_boolean(r == 0));
	return 0;
}

/*
 * Set the fields given of two (rate, burst) pairs: a rate given without its
 * burst gets the default burst for the new rate (a tenth of a second's worth);
 * 0 lifts a limit; fields not given keep their values.
 */
static int qos_fields(struct json_object *params, const char *const keys[4], uint64_t *f[4],
		      char *err, size_t errlen)
{
	bool given[4];

	json_object_object_foreach(params, key, val) {
		bool known = !strcmp(key, "name");

		(void)val;
		for (unsigned i = 0; i < 4; i++)
			known |= !strcmp(key, keys[i]);
		if (!known)
			return ERR(RPC_INVALID_PARAMS, "unknown field \"%.40s\" (known: name, %s, %s, "
				   "%s, %s)", key, keys[0], keys[1], keys[2], keys[3]);
	}
	for (unsigned i = 0; i < 4; i++) {
		uint64_t v;
		int code = get_size(params, keys[i], &given[i], &v, err, errlen);

		if (code)
			return code;
		if (given[i])
			*f[i] = v;
	}
	for (unsigned i = 0; i < 4; i += 2)
		if (given[i] && !given[i + 1])
			*f[i + 1] = 0;
	return 0;
}

static int m_qos(void *ctx, struct json_object *params, struct json_object **result,
		 char *err, size_t errlen)
{
	static const char *const blk_keys[] = { "iops", "iops_burst", "bps", "bps_burst" };
	static const char *const net_keys[] = { "pps", "pps_burst", "bitrate", "bitrate_burst" };
	struct viod *d = ctx;
	int code;
	struct viod_dev *dev = find_named(d, params, err, errlen, &code);

	if (!dev)
		return code;
	if (dev->type == VIOD_BLK) {
		struct vio_blk_qos q;
		uint64_t *f[] = { &q.iops, &q.iops_burst, &q.bps, &q.bps_burst };

		vio_blk_get_qos(dev->blk, &q);
		code = qos_fields(params, blk_keys, f, err, errlen);
		if (code)
			return code;
		vio_blk_set_qos(dev->blk, &q);
	} else if (dev->type == VIOD_NET) {
		struct vio_net_qos q;
		uint64_t *f[] = { &q.pps, &q.pps_burst, &q.bps, &q.bps_burst };

		vio_net_get_qos(dev->net, &q);
		code = qos_fields(params, net_keys, f, err, errlen);
		if (code)
			return code;
		vio_net_set_qos(dev->net, &q);
	} else {
		return ERR(RPC_INVALID_PARAMS, "%s is a %s: rate limits apply to blk devices and net "
			   "ports", dev->name, viod_dev_type_str(dev->type));
	}
	*result = viod_dev_info(dev);
	return 0;
}

static int m_log(void *ctx, struct json_object *params, struct json_object **result,
		 char *err, size_t errlen)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	const char *level;
	int r = need_object(params, true, err, errlen);

	if (!r)
		r = get_string(params, "level", false, &level, err, errlen);
	if (r)
		return r;
	if (level) {
		unsigned i;

		for (i = 0; i < 4 && strcmp(level, names[i]); i++)
			;
		if (i == 4)
			return ERR(RPC_INVALID_PARAMS, "\"level\" '%.40s': expected error, warning, "
				   "info or debug", level);
		vio_log_set_level((enum vio_log_level)i);
	}
	*result = json_object_new_object();
	json_object_object_add(*result, "level",
			       json_object_new_string(vio_log_level_name(vio_log_get_level())));
	return 0;
}

static int m_threads(void *ctx, struct json_object *params, struct json_object **result,
		     char *err, size_t errlen)
{
	struct viod *d = ctx;
	struct json_object *a = json_object_new_array();

	for (unsigned i = 0; i < vio_poller_nthreads(d->poller); i++) {
		struct json_object *t = json_object_new_object();

		json_object_object_add(t, "thread", json_object_new_uint64(i));
		json_object_object_add(t, "queues",
				       json_object_new_uint64(vio_poller_thread_load(d->poller, i)));
		if (d->o.ncpus)
			json_object_object_add(t, "cpu",
					       json_object_new_int(d->o.cpus[i % d->o.ncpus]));
		json_object_array_add(a, t);
	}
	*result = json_object_new_object();
	json_object_object_add(*result, "threads", a);
	return 0;
}

static int m_help(void *ctx, struct json_object *params, struct json_object **result,
		  char *err, size_t errlen);

const struct rpc_method viod_methods[] = {
	{ "version", m_version },   { "help", m_help },       { "list", m_list },
	{ "create", m_create },     { "delete", m_delete },   { "stats", m_stats },
	{ "prometheus", m_prometheus }, { "resize", m_resize }, { "qos", m_qos },
	{ "log", m_log },           { "threads", m_threads },
};
const unsigned viod_nmethods = sizeof(viod_methods) / sizeof(viod_methods[0]);

static int m_help(void *ctx, struct json_object *params, struct json_object **result,
		  char *err, size_t errlen)
{
	struct json_object *a = json_object_new_array();

	for (unsigned i = 0; i < viod_nmethods; i++)
		json_object_array_add(a, json_object_new_string(viod_methods[i].name));
	*result = json_object_new_object();
	json_object_object_add(*result, "methods", a);
	return 0;
}
