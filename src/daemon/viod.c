/* SPDX-License-Identifier: MIT */
/*
 * viod: serves virtio-blk devices over vhost-user. It owns the process: the
 * command line, the control loop (one thread: every backend's socket plus a
 * signalfd) and the wiring from each backend's queue hooks to the data-plane
 * poller. It never touches a ring itself; on SIGINT/SIGTERM it stops every
 * queue (which completes what is in flight) before exiting.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "blk_check.h"
#include "blk_spec.h"
#include "dlog.h"
#include "util/parse_num.h"
#include "poller.h"
#include "vio/blk.h"
#include "vio/log.h"
#include "vio/vhost_user.h"

#define VIOD_MAX_DEVICES 64

struct served_blk {
	struct blk_spec spec;
	struct vio_blk *blk;
	struct vio_vhu_backend *backend;
	struct vio_poller *poller;
	char queue_names[BLK_SPEC_MAX_QUEUES][128];
};

struct viod_opts {
	struct blk_spec specs[VIOD_MAX_DEVICES];
	unsigned ndev;
	unsigned threads;
	unsigned poll_us;
	uint64_t max_guest_mem;
	unsigned socket_mode;
	enum vio_log_level log_level;
};

/* viod's own operator lines; errors always print. */
#define say(level, ...) dlog(level, NULL, __VA_ARGS__)

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: viod --blk SPEC [--blk SPEC ...] [options]\n"
		"\n"
		"Serve virtio-blk devices over vhost-user to QEMU, DPDK or any vhost-user\n"
		"front-end. Runs until SIGINT, SIGTERM or SIGHUP, then completes in-flight I/O\n"
		"and exits. Sockets are created mode 0600 (owner only); no root is needed.\n"
		"\n"
		"  --blk SPEC      a block device (repeatable), SPEC is one of\n"
		"                    sock=PATH,file=PATH[,queues=N][,readonly][,direct][,serial=S]\n"
		"                    sock=PATH,ram=SIZE[,queues=N][,readonly][,serial=S]\n"
		"                    sock=PATH,null=SIZE[,queues=N]\n"
		"                  sock: the vhost-user socket viod listens on (add ',client'\n"
		"                  to connect to a listening front-end instead, reconnecting);\n"
		"                  file: raw image or block device (io_uring); ram: SIZE bytes\n"
		"                  of memory, e.g. 512M or 1G; null: a disk of SIZE that stores\n"
		"                  nothing and reads zeroes, to measure the request path;\n"
		"                  queues: 1..%d (default 1);\n"
		"                  direct: open the file with O_DIRECT\n"
		"  --threads N     data-plane threads polling the queues (default 1)\n"
		"  --poll-us N     microseconds an idle thread keeps polling before it sleeps\n"
		"                  on the queues' eventfds (default 50; 0: sleep at once)\n"
		"  --max-guest-mem SIZE  guest memory one front-end may map (default 1T)\n"
		"  --socket-mode MODE    permissions of the sockets viod listens on, octal\n"
		"                  (default 0600: only viod's user may connect)\n"
		"  -v, --verbose   log more (repeat for debug)\n"
		"  -q, --quiet     log errors only\n"
		"  -h, --help      this text\n"
		"  -V, --version   print the version\n"
		"\n"
		"Example: viod --blk sock=/tmp/vio.sock,ram=1G,queues=2\n"
		"  then: qemu-system-x86_64 ... -object memory-backend-memfd,id=mem,size=2G,share=on\n"
		"        -numa node,memdev=mem -chardev socket,id=c0,path=/tmp/vio.sock\n"
		"        -device vhost-user-blk-pci,chardev=c0,num-queues=2\n",
		BLK_SPEC_MAX_QUEUES);
}

/* 0: run; 1: exit 0 (help/version); -EINVAL: usage error (already reported). */
static int parse_args(int argc, char **argv, struct viod_opts *o)
{
	static const struct option longopts[] = {
		{"blk", required_argument, NULL, 'b'},   {"threads", required_argument, NULL, 't'},
		{"poll-us", required_argument, NULL, 'p'}, {"verbose", no_argument, NULL, 'v'},
		{"max-guest-mem", required_argument, NULL, 'm'},
		{"socket-mode", required_argument, NULL, 's'},
		{"quiet", no_argument, NULL, 'q'},       {"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},     {NULL, 0, NULL, 0},
	};
	char err[256];
	int c;

	*o = (struct viod_opts){.threads = 1, .poll_us = 50, .log_level = VIO_LOG_INFO,
				.max_guest_mem = VIO_VHU_DEFAULT_MAX_MEM};
	while ((c = getopt_long(argc, argv, "vqhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'b':
			if (o->ndev == VIOD_MAX_DEVICES) {
				fprintf(stderr, "viod: at most %d --blk devices\n", VIOD_MAX_DEVICES);
				return -EINVAL;
			}
			if (blk_spec_parse(optarg, &o->specs[o->ndev], err, sizeof(err))) {
				fprintf(stderr, "viod: --blk '%s': %s\n", optarg, err);
				return -EINVAL;
			}
			o->ndev++;
			break;
		case 't':
			if (parse_uint_arg("viod", "--threads", optarg, 1, 64, &o->threads))
				return -EINVAL;
			break;
		case 'p':
			if (parse_uint_arg("viod", "--poll-us", optarg, 0, 1000000, &o->poll_us))
				return -EINVAL;
			break;
		case 'm':
			if (parse_size_arg("viod", "--max-guest-mem", optarg, 1u << 20, 1ull << 46,
					   &o->max_guest_mem))
				return -EINVAL;
			break;
		case 's': {
			char *end;
			unsigned long mode = strtoul(optarg, &end, 8);

			/* Permissions are octal by convention (chmod): the one non-decimal number. */
			if (!*optarg || *end || mode == 0 || mode > 0777 || (mode & 0600) != 0600) {
				fprintf(stderr, "viod: --socket-mode '%s': expected octal permissions "
					"that keep the owner's read and write, like 0600 or 0660\n", optarg);
				return -EINVAL;
			}
			o->socket_mode = (unsigned)mode;
			break;
		}
		case 'v':
			if (o->log_level < VIO_LOG_DEBUG)
				o->log_level++;
			break;
		case 'q':
			o->log_level = VIO_LOG_ERR;
			break;
		case 'h':
			usage(stdout);
			return 1;
		case 'V':
			printf("viod %s\n", VIO_VERSION);
			return 1;
		default:
			fprintf(stderr, "Try 'viod --help'.\n");
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "viod: unexpected argument '%s'\nTry 'viod --help'.\n", argv[optind]);
		return -EINVAL;
	}
	if (!o->ndev) {
		fprintf(stderr, "viod: nothing to serve: give at least one --blk\nTry 'viod --help'.\n");
		return -EINVAL;
	}
	for (unsigned i = 0; i < o->ndev; i++)
		for (unsigned j = 0; j < i; j++)
			if (!strcmp(o->specs[i].sock, o->specs[j].sock)) {
				fprintf(stderr, "viod: socket %s is given to two --blk devices\n",
					o->specs[i].sock);
				return -EINVAL;
			}
	return 0;
}

/* ---- backend hooks: queues go to the poller and come back ---- */

static int hook_start_queue(void *opaque, unsigned q, struct vio_virtq *vq, int kick_fd)
{
	struct served_blk *s = opaque;
	struct vio_poll_queue pq = {
		.vdev = vio_blk_vdev(s->blk), .q = q, .vq = vq, .kick_fd = kick_fd,
		.name = s->queue_names[q],
	};
	char name[sizeof(s->queue_names[q])];

	snprintf(name, sizeof(name), "%s q%u", s->spec.sock, q);
	memcpy(s->queue_names[q], name, sizeof(name));
	return vio_poller_add(s->poller, &pq);
}

static void hook_stop_queue(void *opaque, unsigned q)
{
	struct served_blk *s = opaque;

	vio_poller_remove(s->poller, vio_blk_vdev(s->blk).dev, q);
}

static void hook_connection(void *opaque, bool connected)
{
	struct served_blk *s = opaque;

	dlog(VIO_LOG_INFO, s->spec.sock, "front-end %s", connected ? "connected" : "disconnected");
}

/* ---- devices ---- */

static void describe(const struct served_blk *s, char *buf, size_t len)
{
	const struct blk_spec *sp = &s->spec;
	unsigned long long mib = vio_blk_capacity_bytes(s->blk) >> 20;

	snprintf(buf, len, "%s%s, %llu MiB, %u queue%s%s%s",
		 sp->file[0] ? "file " : sp->null_size ? "null disk (stores nothing)" : "RAM disk",
		 sp->file[0] ? sp->file : "", mib, sp->queues, sp->queues == 1 ? "" : "s",
		 sp->readonly ? ", read-only" : "", sp->direct ? ", O_DIRECT" : "");
}

static int serve_blk(struct served_blk *s, struct vio_poller *poller, const struct viod_opts *o)
{
	const struct blk_spec *sp = &s->spec;
	struct vio_blk_opts bo = {
		.name = sp->sock,
		.file = sp->file[0] ? sp->file : NULL, .ram_size = sp->ram_size,
		.null_size = sp->null_size,
		.queues = sp->queues, .readonly = sp->readonly, .direct = sp->direct,
		.serial = sp->serial[0] ? sp->serial : NULL,
	};
	struct vio_vhu_backend_opts vo = {
		.socket_path = sp->sock, .client = sp->client, .max_mem_bytes = o->max_guest_mem,
		.socket_mode = o->socket_mode,
		.hooks = {.start_queue = hook_start_queue, .stop_queue = hook_stop_queue,
			  .connection = hook_connection},
		.hooks_opaque = s,
	};
	char what[4400], err[4400];
	int r;

	s->poller = poller;
	r = blk_spec_check(sp, err, sizeof(err));
	if (r) {
		fprintf(stderr, "viod: --blk %s: %s\n", sp->sock, err);
		return r;
	}
	r = vio_blk_new(&bo, &s->blk);
	if (r) {
		if (bo.file)
			fprintf(stderr, "viod: %s: cannot serve %s: %s%s\n", sp->sock, bo.file,
				strerror(-r), r == -EINVAL && bo.direct ?
				" (does the filesystem support O_DIRECT?)" : "");
		else
			fprintf(stderr, "viod: %s: cannot make a %llu-byte RAM disk: %s%s\n", sp->sock,
				(unsigned long long)bo.ram_size, strerror(-r),
				r == -EINVAL ? " (the size must be a multiple of 512)" : "");
		return r;
	}
	vo.vdev = vio_blk_vdev(s->blk);
	r = vio_vhu_backend_new(&vo, &s->backend);
	if (r) {
		fprintf(stderr, "viod: %s: cannot %s the socket: %s\n", sp->sock,
			sp->client ? "set up" : "listen on", strerror(-r));
		vio_blk_free(s->blk);
		s->blk = NULL;
		return r;
	}
	describe(s, what, sizeof(what));
	say(VIO_LOG_INFO, "%s: %s %s", sp->sock, sp->client ? "connecting for" : "serving", what);
	return 0;
}

static void unserve_blk(struct served_blk *s)
{
	/* Freeing the backend stops its queues, which completes what is in flight. */
	vio_vhu_backend_free(s->backend);
	vio_blk_free(s->blk);
	s->backend = NULL;
	s->blk = NULL;
}

/* ---- control loop ---- */

static int signal_fd(void)
{
	sigset_t set;
	int fd;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	fd = signalfd(-1, &set, SFD_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static int control_loop(struct served_blk *devs, unsigned ndev, int sfd)
{
	struct pollfd pfd[VIOD_MAX_DEVICES + 1];

	for (;;) {
		for (unsigned i = 0; i < ndev; i++)
			pfd[i] = (struct pollfd){.fd = vio_vhu_backend_fd(devs[i].backend),
						 .events = POLLIN};
		pfd[ndev] = (struct pollfd){.fd = sfd, .events = POLLIN};
		if (poll(pfd, ndev + 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "viod: poll: %s\n", strerror(errno));
			return -errno;
		}
		if (pfd[ndev].revents) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				say(VIO_LOG_INFO, "%s: completing in-flight I/O and exiting",
				    strsignal((int)si.ssi_signo));
				return 0;
			}
		}
		for (unsigned i = 0; i < ndev; i++) {
			int r;

			if (!pfd[i].revents)
				continue;
			r = vio_vhu_backend_dispatch(devs[i].backend);
			if (r) {
				fprintf(stderr, "viod: %s: backend cannot go on: %s\n",
					devs[i].spec.sock, strerror(-r));
				return r;
			}
		}
	}
}

int main(int argc, char **argv)
{
	static struct viod_opts o;
	static struct served_blk devs[VIOD_MAX_DEVICES];
	struct vio_poller *poller = NULL;
	unsigned served = 0;
	int sfd, r;

	r = parse_args(argc, argv, &o);
	if (r)
		return r > 0 ? 0 : 2;
	vio_log_set(vio_log_stderr, "viod", o.log_level);
	/* A front-end shrinking guest memory fails its device, not the process. */
	r = vio_vhu_guard_sigbus();
	if (r)
		fprintf(stderr, "viod: cannot install the SIGBUS guard: %s\n", strerror(-r));
	sfd = signal_fd();
	if (sfd < 0) {
		fprintf(stderr, "viod: signalfd: %s\n", strerror(-sfd));
		return 1;
	}
	r = vio_poller_new(o.threads, o.poll_us, &poller);
	if (r) {
		fprintf(stderr, "viod: cannot start %u data-plane threads: %s\n", o.threads,
			strerror(-r));
		goto out;
	}
	for (; served < o.ndev; served++) {
		devs[served].spec = o.specs[served];
		r = serve_blk(&devs[served], poller, &o);
		if (r)
			goto out;
	}
	r = control_loop(devs, served, sfd);
out:
	while (served)
		unserve_blk(&devs[--served]);
	if (poller)
		vio_poller_free(poller);
	close(sfd);
	return r ? 1 : 0;
}
