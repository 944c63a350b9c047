/* SPDX-License-Identifier: MIT */
/*
 * vioctl: viod's management CLI. Turns a command line into one JSON-RPC
 * request on viod's management socket and its answer into a table (or the
 * JSON itself with --json, or Prometheus text). It holds no state and never
 * waits on viod longer than --timeout.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "util/rpc_path.h"
#include "vioctl.h"

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: vioctl [--rpc PATH] [--json] [--timeout MS] COMMAND [ARGS]\n"
		"\n"
		"Manage a running viod over its management socket (JSON-RPC 2.0).\n"
		"\n"
		"Commands:\n"
		"  list                          devices: type, state, socket, size, queues\n"
		"  create blk|net|tap SPEC       add a device; SPEC as viod's --blk/--net/--tap\n"
		"                                (e.g. create blk sock=/run/vm1.sock,ram=1G)\n"
		"  delete NAME                   stop a device (in-flight I/O completes first)\n"
		"  stats [NAME] [--watch [SECS]] [--prometheus]\n"
		"                                counters per device and queue; --watch\n"
		"                                refreshes every SECS (1); --prometheus prints\n"
		"                                the text exposition format (all devices)\n"
		"  resize NAME SIZE              change a blk device's size (e.g. 20G); the guest\n"
		"                                is told if its front-end takes config changes\n"
		"  qos NAME [iops=N] [bps=SIZE] [iops_burst=N] [bps_burst=SIZE]\n"
		"  qos NAME [pps=N] [bitrate=SIZE] [pps_burst=N] [bitrate_burst=SIZE]\n"
		"                                set a blk device's (bps: bytes/s) or a net\n"
		"                                port's (bitrate: bits/s) rate limits; 0 lifts\n"
		"                                one, a rate without its burst gets a tenth of a\n"
		"                                second's worth; no limits given: show them\n"
		"  log [error|warning|info|debug]  show or set viod's log level\n"
		"  threads                       data-plane threads and their queues\n"
		"  version                       viod's version and uptime\n"
		"\n"
		"Options:\n"
		"  --rpc PATH      viod's management socket (default: $XDG_RUNTIME_DIR/viod.sock,\n"
		"                  else /run/viod.sock for root, else /tmp/viod-UID/viod.sock)\n"
		"  --json          print viod's answer as JSON\n"
		"  --timeout MS    give up on viod after MS milliseconds (default 5000)\n"
		"  -h, --help      this text;  -V, --version  vioctl's version\n"
		"\n"
		"Exit status: 0 done; 1 viod refused or failed (its message is printed);\n"
		"2 bad usage; 3 viod cannot be reached.\n");
}

/* ------------------------------------------------------------- transport */

static int connect_rpc(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	return fd;
}

static int64_t ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Send one request line and read one answer line within the deadline. */
static int exchange(struct ctl *c, const char *line, char **answer)
{
	size_t len = strlen(line), off = 0, cap = 65536, got = 0;
	int64_t deadline = ms_now() + c->timeout_ms;
	char *buf;

	while (off < len) {
		ssize_t n = send(c->fd, line + off, len - off, MSG_NOSIGNAL);

		if (n < 0)
			return -errno;
		off += (size_t)n;
	}
	buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		int64_t left = deadline - ms_now();
		ssize_t n;
		char *nl;

		if (left <= 0 || poll(&p, 1, (int)left) <= 0) {
			free(buf);
			return -ETIMEDOUT;
		}
		if (got + 1 >= cap) {
			char *nb = realloc(buf, cap * 2);

			if (!nb) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
			cap *= 2;
		}
		n = recv(c->fd, buf + got, cap - got - 1, 0);
		if (n <= 0) {
			free(buf);
			return n == 0 ? -ECONNRESET : -errno;
		}
		got += (size_t)n;
		buf[got] = '\0';
		nl = strchr(buf, '\n');
		if (nl) {
			*nl = '\0';
			*answer = buf;
			return 0;
		}
	}
}

int ctl_call(struct ctl *c, const char *method, struct json_object *params,
	     struct json_object **result)
{
	struct json_object *req = json_object_new_object(), *resp, *v;
	char *line, *answer = NULL;
	const char *text;
	int r;

	json_object_object_add(req, "jsonrpc", json_object_new_string("2.0"));
	json_object_object_add(req, "id", json_object_new_int(++c->id));
	json_object_object_add(req, "method", json_object_new_string(method));
	if (params)
		json_object_object_add(req, "params", params);
	text = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
	line = malloc(strlen(text) + 2);
	if (!line) {
		json_object_put(req);
		return 3;
	}
	sprintf(line, "%s\n", text);
	json_object_put(req);
	r = exchange(c, line, &answer);
	free(line);
	if (r) {
		fprintf(stderr, "vioctl: %s: %s\n", c->path, r == -ETIMEDOUT ?
			"viod did not answer in time" : strerror(-r));
		return 3;
	}
	resp = json_tokener_parse(answer);
	free(answer);
	if (!resp) {
		fprintf(stderr, "vioctl: %s: an answer that is not JSON\n", c->path);
		return 3;
	}
	if (json_object_object_get_ex(resp, "error", &v) && v) {
		struct json_object *msg;

		if (c->json)
			printf("%s\n", json_object_to_json_string_ext(v, JSON_C_TO_STRING_PRETTY));
		fprintf(stderr, "vioctl: %s: %s\n", method,
			json_object_object_get_ex(v, "message", &msg) ? json_object_get_string(msg) :
			"refused");
		json_object_put(resp);
		return 1;
	}
	json_object_object_get_ex(resp, "result", &v);
	*result = v ? json_object_get(v) : NULL;
	json_object_put(resp);
	return 0;
}

/* --------------------------------------------------------------- commands */

static int parse_kv_params(int argc, char **argv, struct json_object *params)
{
	for (int i = 0; i < argc; i++) {
		char *eq = strchr(argv[i], '=');

		if (!eq || eq == argv[i]) {
			fprintf(stderr, "vioctl: '%s': expected KEY=VALUE\n", argv[i]);
			return 2;
		}
		*eq = '\0';
		json_object_object_add(params, argv[i], json_object_new_string(eq + 1));
	}
	return 0;
}

static int run(struct ctl *c, int argc, char **argv)
{
	const char *cmd = argv[0];
	struct json_object *params = NULL, *res = NULL;
	int r;

	if (!strcmp(cmd, "stats"))
		return ctl_stats(c, argc, argv);
	if (!strcmp(cmd, "list") || !strcmp(cmd, "threads") || !strcmp(cmd, "version")) {
		if (argc != 1) {
			fprintf(stderr, "vioctl: %s takes no arguments\n", cmd);
			return 2;
		}
	} else if (!strcmp(cmd, "create")) {
		if (argc != 3) {
			fprintf(stderr, "vioctl: usage: create blk|net|tap SPEC\n");
			return 2;
		}
		params = json_object_new_object();
		json_object_object_add(params, "type", json_object_new_string(argv[1]));
		json_object_object_add(params, "spec", json_object_new_string(argv[2]));
	} else if (!strcmp(cmd, "delete")) {
		if (argc != 2) {
			fprintf(stderr, "vioctl: usage: delete NAME\n");
			return 2;
		}
		params = json_object_new_object();
		json_object_object_add(params, "name", json_object_new_string(argv[1]));
	} else if (!strcmp(cmd, "resize")) {
		if (argc != 3) {
			fprintf(stderr, "vioctl: usage: resize NAME SIZE\n");
			return 2;
		}
		params = json_object_new_object();
		json_object_object_add(params, "name", json_object_new_string(argv[1]));
		json_object_object_add(params, "size", json_object_new_string(argv[2]));
	} else if (!strcmp(cmd, "qos")) {
		if (argc < 2) {
			fprintf(stderr, "vioctl: usage: qos NAME [iops=N] [bps=SIZE] ...\n");
			return 2;
		}
		params = json_object_new_object();
		json_object_object_add(params, "name", json_object_new_string(argv[1]));
		r = parse_kv_params(argc - 2, argv + 2, params);
		if (r) {
			json_object_put(params);
			return r;
		}
	} else if (!strcmp(cmd, "log")) {
		if (argc > 2) {
			fprintf(stderr, "vioctl: usage: log [LEVEL]\n");
			return 2;
		}
		params = json_object_new_object();
		if (argc == 2)
			json_object_object_add(params, "level", json_object_new_string(argv[1]));
	} else {
		fprintf(stderr, "vioctl: unknown command '%s' (try vioctl --help)\n", cmd);
		return 2;
	}
	r = ctl_call(c, cmd, params, &res);
	if (r)
		return r;
	if (c->json)
		printf("%s\n", res ? json_object_to_json_string_ext(res, JSON_C_TO_STRING_PRETTY) :
			       "null");
	else
		ctl_print(cmd, res);
	json_object_put(res);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "rpc", required_argument, NULL, 'r' }, { "json", no_argument, NULL, 'j' },
		{ "timeout", required_argument, NULL, 't' }, { "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },   { NULL, 0, NULL, 0 },
	};
	struct ctl c = { .timeout_ms = 5000 };
	char path[108] = "";
	int opt, r;

	/* Options before the command; the command's own options (stats --watch) follow it. */
	while ((opt = getopt_long(argc, argv, "+hV", longopts, NULL)) != -1) {
		switch (opt) {
		case 'r':
			snprintf(path, sizeof(path), "%s", optarg);
			break;
		case 'j':
			c.json = true;
			break;
		case 't': {
			char *end;
			long v = strtol(optarg, &end, 10);

			if (*end || v < 1 || v > 3600000) {
				fprintf(stderr, "vioctl: --timeout '%s': expected 1 to 3600000 ms\n",
					optarg);
				return 2;
			}
			c.timeout_ms = (int)v;
			break;
		}
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("vioctl %s\n", VIO_VERSION);
			return 0;
		default:
			fprintf(stderr, "Try 'vioctl --help'.\n");
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	if (!path[0]) {
		char err[256];

		if (rpc_default_path(path, sizeof(path), false, err, sizeof(err))) {
			fprintf(stderr, "vioctl: %s\n", err);
			return 3;
		}
	}
	c.path = path;
	c.fd = connect_rpc(path);
	if (c.fd < 0) {
		fprintf(stderr, "vioctl: cannot reach viod at %s: %s%s\n", path, strerror(-c.fd),
			c.fd == -ENOENT ? " (is viod running? give --rpc PATH)" : "");
		return 3;
	}
	r = run(&c, argc - optind, argv + optind);
	close(c.fd);
	return r;
}
