/* SPDX-License-Identifier: MIT */
/*
 * viod: serves virtio-blk devices and virtio-net switch ports over
 * vhost-user, managed at run time. This file owns the process: the command
 * line and the configuration file, the start (poller, management socket,
 * devices) and the orderly stop. Devices are dev.c's, the event loop
 * control.c's, the management API rpc.c's and rpc_methods.c's. It never
 * touches a ring itself; on SIGINT/SIGTERM/SIGHUP it stops every queue
 * (which completes what is in flight) before exiting.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "dlog.h"
#include "rpc.h"
#include "rpc_methods.h"
#include "stats.h"
#include "util/parse_num.h"
#include "util/rpc_path.h"
#include "viod.h"

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: viod [--blk SPEC ...] [--net SPEC ...] [--tap ifname=NAME ...] [options]\n"
		"\n"
		"Serve virtio-blk devices and virtio-net ports of a built-in switch over\n"
		"vhost-user to QEMU, DPDK or any vhost-user front-end, managed at run time\n"
		"with vioctl over a JSON-RPC socket. Runs until SIGINT, SIGTERM or SIGHUP,\n"
		"then completes in-flight I/O and exits. SIGUSR1 prints every device's\n"
		"counters. Sockets are created mode 0600 (owner only); no root is needed\n"
		"(a --tap needs CAP_NET_ADMIN).\n"
		"\n"
		"Devices (repeatable; also in the configuration file, and at run time with\n"
		"vioctl create):\n"
		"  --blk SPEC      a block device, SPEC is one of\n"
		"                    sock=PATH,file=PATH[,queues=N][,readonly][,direct][,serial=S]\n"
		"                              [,offset=SIZE][,length=SIZE][,shared]\n"
		"                    sock=PATH,ram=SIZE[,queues=N][,readonly][,serial=S]\n"
		"                    sock=PATH,null=SIZE[,queues=N]\n"
		"                  and any of them ,name=NAME (default: the socket path) and rate\n"
		"                  limits ,iops=N,bps=SIZE (bytes/s),iops_burst=N,bps_burst=SIZE;\n"
		"                  sock: the vhost-user socket viod listens on (add ',client'\n"
		"                  to connect to a listening front-end instead, reconnecting);\n"
		"                  file: raw image or block device (io_uring), offset/length:\n"
		"                  serve only that window of it; ram: SIZE bytes of memory,\n"
		"                  e.g. 512M or 1G; null: a disk of SIZE that stores nothing\n"
		"                  and reads zeroes, to measure the request path;\n"
		"                  queues: 1..%d (default 1); direct: open with O_DIRECT;\n"
		"                  a file is locked for its one device unless every device\n"
		"                  serving it says shared (a live migration's two sockets)\n"
		"  --net SPEC      a virtio-net port of the switch, SPEC is\n"
		"                    sock=PATH[,name=NAME][,queues=N][,mac=MAC][,mtu=N][,client]\n"
		"                         [,pps=N][,bitrate=SIZE][,pps_burst=N][,bitrate_burst=SIZE]\n"
		"                  queues: queue pairs, 1..%d (default 1); mac: offered to\n"
		"                  the driver (default: none, the driver picks); mtu: offered\n"
		"                  with VIRTIO_NET_F_MTU (default 1500); client: as for --blk;\n"
		"                  pps, bitrate: what the port may send into the switch, frames\n"
		"                  and bits per second (frames beyond wait in its TX ring)\n"
		"  --tap ifname=NAME  a tap interface as a port of the same switch\n"
		"                  (created if missing; bring it up with ip link set NAME up)\n"
		"\n"
		"Options:\n"
		"  --config FILE   read settings and devices from FILE (JSON; docs/viod.md);\n"
		"                  the command line's settings override it, devices add up\n"
		"  --rpc PATH      the management socket (default: $XDG_RUNTIME_DIR/viod.sock,\n"
		"                  else /run/viod.sock for root, else /tmp/viod-UID/viod.sock in\n"
		"                  a 0700 directory made if missing; 'none': no management socket)\n"
		"  --rpc-mode MODE permissions of the management socket, octal (default 0600)\n"
		"  --threads N     data-plane threads polling the queues (default 1; all\n"
		"                  queues of the switch are polled by one of them)\n"
		"  --cpus LIST     pin data-plane thread i to the i-th CPU of LIST (0,1,...)\n"
		"  --poll-us N     microseconds an idle thread keeps polling before it sleeps\n"
		"                  on the queues' eventfds (default 50; 0: sleep at once); while\n"
		"                  a disk's completions wake it within 1 ms, this doubles up to\n"
		"                  1 ms, and halves back after other wake-ups (a queue whose\n"
		"                  slots are all taken never keeps it awake)\n"
		"  --max-guest-mem SIZE  guest memory one front-end may map (default 1T)\n"
		"  --socket-mode MODE    permissions of the vhost-user sockets viod listens\n"
		"                  on, octal (default 0600: only viod's user may connect)\n"
		"  --prom-file PATH      write Prometheus text to PATH (node_exporter's\n"
		"                  textfile collector) every --prom-interval seconds\n"
		"  --prom-interval N     seconds between two writes of --prom-file (default 10)\n"
		"  --record-busy   count the time the data-plane threads spend in polls that\n"
		"                  find work (printed with the counters; for benchmarks)\n"
		"  -v, --verbose   one log level more per -v (the default, info, becomes debug)\n"
		"  -q, --quiet     log errors only\n"
		"  -h, --help      this text\n"
		"  -V, --version   print the version\n"
		"\n"
		"Example: viod --blk sock=/tmp/vio.sock,ram=1G,queues=2\n"
		"  then: qemu-system-x86_64 ... -object memory-backend-memfd,id=mem,size=2G,share=on\n"
		"        -numa node,memdev=mem -chardev socket,id=c0,path=/tmp/vio.sock\n"
		"        -device vhost-user-blk-pci,chardev=c0,num-queues=2\n"
		"Example: viod --net sock=/tmp/vm1.sock,queues=2 --net sock=/tmp/vm2.sock,queues=2\n"
		"  then per VM: -chardev socket,id=n0,path=/tmp/vm1.sock,reconnect=1\n"
		"        -netdev vhost-user,id=net0,chardev=n0,queues=2\n"
		"        -device virtio-net-pci,netdev=net0,mq=on\n"
		"Manage it: vioctl list; vioctl stats; vioctl create blk sock=...,ram=1G\n",
		BLK_SPEC_MAX_QUEUES, VIO_NET_MAX_PAIRS);
}

/* Settings the command line gave, applied over the configuration file's. */
struct cli {
	const char *config;
	int threads, poll_us, socket_mode, rpc_mode, prom_interval, level_delta, quiet, record_busy;
	uint64_t max_guest_mem;
	const char *rpc, *cpus, *prom_file;
	struct viod_opts devs; /* only its device lists */
};

static int parse_mode(const char *opt, const char *s, unsigned *out)
{
	char *end;
	unsigned long mode = strtoul(s, &end, 8);

	/* Permissions are octal by convention (chmod): the one non-decimal number. */
	if (!*s || *end || mode == 0 || mode > 0777 || (mode & 0600) != 0600) {
		fprintf(stderr, "viod: %s '%s': expected octal permissions that keep "
			"the owner's read and write, like 0600 or 0660\n", opt, s);
		return -EINVAL;
	}
	*out = (unsigned)mode;
	return 0;
}

static int add_spec(struct viod_opts *o, int kind, const char *text)
{
	char err[4200];
	void *p;
	int r;

	if (kind == 'b') {
		p = realloc(o->blks, (o->nblks + 1) * sizeof(*o->blks));
		if (!p)
			return -ENOMEM;
		o->blks = p;
		r = blk_spec_parse(text, &o->blks[o->nblks], err, sizeof(err));
		if (!r)
			o->nblks++;
	} else if (kind == 'n') {
		p = realloc(o->nets, (o->nnets + 1) * sizeof(*o->nets));
		if (!p)
			return -ENOMEM;
		o->nets = p;
		r = net_spec_parse(text, &o->nets[o->nnets], err, sizeof(err));
		if (!r)
			o->nnets++;
	} else {
		p = realloc(o->taps, (o->ntaps + 1) * sizeof(*o->taps));
		if (!p)
			return -ENOMEM;
		o->taps = p;
		r = tap_spec_parse(text, &o->taps[o->ntaps], err, sizeof(err));
		if (!r)
			o->ntaps++;
	}
	if (r)
		fprintf(stderr, "viod: --%s '%s': %s\n", kind == 'b' ? "blk" : kind == 'n' ? "net" :
			"tap", text, err);
	return r;
}

/* 0: run; 1: exit 0 (help/version); -EINVAL: usage error (already reported). */
static int parse_cli(int argc, char **argv, struct cli *c)
{
	static const struct option longopts[] = {
		{"blk", required_argument, NULL, 'b'},   {"threads", required_argument, NULL, 't'},
		{"net", required_argument, NULL, 'n'},   {"tap", required_argument, NULL, 'T'},
		{"poll-us", required_argument, NULL, 'p'}, {"verbose", no_argument, NULL, 'v'},
		{"record-busy", no_argument, NULL, 'R'}, {"config", required_argument, NULL, 'c'},
		{"max-guest-mem", required_argument, NULL, 'm'},
		{"socket-mode", required_argument, NULL, 's'}, {"rpc", required_argument, NULL, 'r'},
		{"rpc-mode", required_argument, NULL, 'M'},
		{"cpus", required_argument, NULL, 'C'}, {"prom-file", required_argument, NULL, 'P'},
		{"prom-interval", required_argument, NULL, 'I'},
		{"quiet", no_argument, NULL, 'q'},       {"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},     {NULL, 0, NULL, 0},
	};
	unsigned u;
	int opt;

	memset(c, 0, sizeof(*c));
	c->threads = c->poll_us = c->socket_mode = c->rpc_mode = c->prom_interval = -1;
	while ((opt = getopt_long(argc, argv, "vqhV", longopts, NULL)) != -1) {
		switch (opt) {
		case 'b': case 'n': case 'T':
			if (add_spec(&c->devs, opt, optarg))
				return -EINVAL;
			break;
		case 't':
			if (parse_uint_arg("viod", "--threads", optarg, 1, 64, &u))
				return -EINVAL;
			c->threads = (int)u;
			break;
		case 'p':
			if (parse_uint_arg("viod", "--poll-us", optarg, 0, 1000000, &u))
				return -EINVAL;
			c->poll_us = (int)u;
			break;
		case 'I':
			if (parse_uint_arg("viod", "--prom-interval", optarg, 1, 86400, &u))
				return -EINVAL;
			c->prom_interval = (int)u;
			break;
		case 'm':
			if (parse_size_arg("viod", "--max-guest-mem", optarg, 1u << 20, 1ull << 46,
					   &c->max_guest_mem))
				return -EINVAL;
			break;
		case 's': case 'M':
			if (parse_mode(opt == 's' ? "--socket-mode" : "--rpc-mode", optarg, &u))
				return -EINVAL;
			*(opt == 's' ? &c->socket_mode : &c->rpc_mode) = (int)u;
			break;
		case 'c': c->config = optarg; break;
		case 'r': c->rpc = optarg; break;
		case 'C': c->cpus = optarg; break;
		case 'P': c->prom_file = optarg; break;
		case 'R': c->record_busy = 1; break;
		case 'v': c->level_delta++; break;
		case 'q': c->quiet = 1; break;
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
	return 0;
}

static int append(void **dst, unsigned *n, const void *src, unsigned m, size_t size)
{
	void *p;

	if (!m)
		return 0;
	p = realloc(*dst, (*n + m) * size);
	if (!p)
		return -ENOMEM;
	memcpy((char *)p + *n * size, src, m * size);
	*dst = p;
	*n += m;
	return 0;
}

/* Defaults, then the configuration file, then the command line. */
static int build_opts(const struct cli *c, struct viod_opts *o)
{
	char err[4600];

	*o = (struct viod_opts){ .threads = 1, .poll_us = 50, .log_level = VIO_LOG_INFO,
				 .max_guest_mem = VIO_VHU_DEFAULT_MAX_MEM, .socket_mode = 0600,
				 .rpc_mode = 0600,
				 .prom_interval_s = 10 };
	if (c->config && viod_config_load(c->config, o, err, sizeof(err))) {
		fprintf(stderr, "viod: --config %s\n", err);
		return -EINVAL;
	}
	if (c->threads >= 0)
		o->threads = (unsigned)c->threads;
	if (c->poll_us >= 0)
		o->poll_us = (unsigned)c->poll_us;
	if (c->socket_mode >= 0)
		o->socket_mode = (unsigned)c->socket_mode;
	if (c->rpc_mode >= 0)
		o->rpc_mode = (unsigned)c->rpc_mode;
	if (c->prom_interval >= 0)
		o->prom_interval_s = (unsigned)c->prom_interval;
	if (c->max_guest_mem)
		o->max_guest_mem = c->max_guest_mem;
	if (c->record_busy)
		o->record_busy = true;
	if (c->quiet)
		o->log_level = VIO_LOG_ERR;
	for (int i = 0; i < c->level_delta && o->log_level < VIO_LOG_DEBUG; i++)
		o->log_level++;
	if (c->cpus && viod_config_cpus(c->cpus, o, err, sizeof(err))) {
		fprintf(stderr, "viod: --cpus '%s': %s\n", c->cpus, err);
		return -EINVAL;
	}
	if (c->prom_file)
		snprintf(o->prom_file, sizeof(o->prom_file), "%s", c->prom_file);
	if (c->rpc) {
		if (strlen(c->rpc) >= sizeof(o->rpc_path)) {
			fprintf(stderr, "viod: --rpc '%s': path too long\n", c->rpc);
			return -EINVAL;
		}
		snprintf(o->rpc_path, sizeof(o->rpc_path), "%s", c->rpc);
		o->rpc_given = true;
	}
	if (!o->rpc_path[0] && rpc_default_path(o->rpc_path, sizeof(o->rpc_path), true, err,
						 sizeof(err))) {
		fprintf(stderr, "viod: the default management socket: %s\n", err);
		return -EINVAL;
	}
	if (append((void **)&o->blks, &o->nblks, c->devs.blks, c->devs.nblks, sizeof(*o->blks)) ||
	    append((void **)&o->nets, &o->nnets, c->devs.nets, c->devs.nnets, sizeof(*o->nets)) ||
	    append((void **)&o->taps, &o->ntaps, c->devs.taps, c->devs.ntaps, sizeof(*o->taps)))
		return -ENOMEM;
	if (!o->nblks && !o->nnets && !o->ntaps && !strcmp(o->rpc_path, "none")) {
		fprintf(stderr, "viod: nothing to serve and no management socket: give a --blk, "
				"--net or --tap, or an --rpc path\nTry 'viod --help'.\n");
		return -EINVAL;
	}
	return 0;
}

/*
 * Each device holds a handful of fds (its socket, the connection, a kick
 * and a call eventfd per queue, the guest memory's): hundreds of devices
 * pass the usual soft limit of 1024, so take what the hard limit allows.
 */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		dlog(VIO_LOG_WARN, NULL, "cannot raise the open-file limit: %s", strerror(errno));
}

static int signal_fd(void)
{
	sigset_t set;
	int fd;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	fd = signalfd(-1, &set, SFD_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/*
 * The management socket. A default path another viod holds is only a
 * warning when there are devices to serve; with none, viod could do nothing
 * at all, so it is an error.
 */
static int start_rpc(struct viod *d)
{
	bool alone = !d->o.nblks && !d->o.nnets && !d->o.ntaps;
	int r;

	if (!strcmp(d->o.rpc_path, "none"))
		return 0;
	r = rpc_server_new(d->o.rpc_path, d->o.rpc_mode, viod_methods, viod_nmethods, d,
			   &d->rpc);
	if (r == 0) {
		dlog(VIO_LOG_INFO, NULL, "management socket %s", d->o.rpc_path);
		return 0;
	}
	if (!d->o.rpc_given && alone) {
		dlog(VIO_LOG_ERR, NULL, "cannot listen on the default management socket %s: %s%s; "
		     "with no device to serve there is nothing to do: give --rpc PATH (or devices)",
		     d->o.rpc_path, strerror(-r),
		     r == -EADDRINUSE ? " (another viod is serving it)" : "");
		return r;
	}
	dlog(d->o.rpc_given ? VIO_LOG_ERR : VIO_LOG_WARN, NULL,
	     "cannot listen on the management socket %s: %s%s", d->o.rpc_path, strerror(-r),
	     d->o.rpc_given ? "" : " (running without one; give --rpc PATH)");
	return d->o.rpc_given ? r : 0;
}

static int start_prom_timer(struct viod *d)
{
	struct itimerspec its = { 0 };

	d->prom_timer_fd = -1;
	if (!d->o.prom_file[0])
		return 0;
	d->prom_timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (d->prom_timer_fd < 0)
		return -errno;
	its.it_value.tv_sec = its.it_interval.tv_sec = d->o.prom_interval_s;
	return timerfd_settime(d->prom_timer_fd, 0, &its, NULL) < 0 ? -errno : 0;
}

static int start_devices(struct viod *d)
{
	char err[4600];
	int r = 0;

	for (unsigned i = 0; !r && i < d->o.nblks; i++)
		if ((r = viod_add_blk(d, &d->o.blks[i], err, sizeof(err))))
			fprintf(stderr, "viod: --blk %s: %s\n", d->o.blks[i].sock, err);
	for (unsigned i = 0; !r && i < d->o.nnets; i++)
		if ((r = viod_add_net(d, &d->o.nets[i], err, sizeof(err))))
			fprintf(stderr, "viod: --net %s: %s\n", d->o.nets[i].sock, err);
	for (unsigned i = 0; !r && i < d->o.ntaps; i++)
		if ((r = viod_add_tap(d, &d->o.taps[i], err, sizeof(err))))
			fprintf(stderr, "viod: --tap %s: %s\n", d->o.taps[i].ifname, err);
	return r;
}

/* The device descriptions of the command line and of the options built from it. */
static void free_descs(struct viod *d, struct cli *c)
{
	free(d->o.blks);
	free(d->o.nets);
	free(d->o.taps);
	free(c->devs.blks);
	free(c->devs.nets);
	free(c->devs.taps);
}

int main(int argc, char **argv)
{
	static struct viod d;
	struct cli c;
	struct timespec ts;
	int r;

	r = parse_cli(argc, argv, &c);
	if (!r && build_opts(&c, &d.o))
		r = -EINVAL;
	if (r) {
		/* Descriptions parsed before the error are freed: nothing is left behind. */
		free_descs(&d, &c);
		return r > 0 ? 0 : 2;
	}
	vio_log_set(vio_log_stderr, "viod", d.o.log_level);
	raise_fd_limit();
	clock_gettime(CLOCK_MONOTONIC, &ts);
	d.started_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	/* A front-end shrinking guest memory fails its device, not the process. */
	r = vio_vhu_guard_sigbus();
	if (r)
		fprintf(stderr, "viod: cannot install the SIGBUS guard: %s\n", strerror(-r));
	d.sig_fd = signal_fd();
	d.ep_fd = epoll_create1(EPOLL_CLOEXEC);
	if (d.sig_fd < 0 || d.ep_fd < 0) {
		fprintf(stderr, "viod: cannot set up the control loop: %s\n",
			strerror(d.sig_fd < 0 ? -d.sig_fd : errno));
		return 1;
	}
	r = vio_poller_new(d.o.threads, d.o.poll_us, d.o.cpus, d.o.ncpus, &d.poller);
	if (r) {
		fprintf(stderr, "viod: cannot start %u data-plane threads: %s\n", d.o.threads,
			strerror(-r));
		return 1;
	}
	vio_poller_record_busy(d.poller, d.o.record_busy);
	r = start_rpc(&d);
	if (!r)
		r = start_prom_timer(&d);
	if (!r)
		r = start_devices(&d);
	if (!r)
		r = viod_run(&d);
	viod_print_counters(&d);
	viod_delete_all(&d);
	rpc_server_free(d.rpc);
	/* A private directory viod made for its default socket goes with it (if empty). */
	if (rpc_default_dir_made()[0])
		rmdir(rpc_default_dir_made());
	vio_poller_free(d.poller);
	if (d.prom_timer_fd >= 0)
		close(d.prom_timer_fd);
	close(d.ep_fd);
	close(d.sig_fd);
	free_descs(&d, &c);
	return r ? 1 : 0;
}
