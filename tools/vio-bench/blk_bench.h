/* SPDX-License-Identifier: MIT */
/*
 * vio-bench blk, shared by its files: the options, the device plan, the
 * per-queue job and its request slots, and the few functions one file calls
 * in another. Only the main thread and a queue's own thread touch a job.
 */
#ifndef VIO_BENCH_BLK_BENCH_H
#define VIO_BENCH_BLK_BENCH_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>
#include <time.h>

#include "latency.h"
#include "vio/blk.h"
#include "vio/virtio_spec.h"

#define BLK_STALL_NS 5000000000ull    /* nothing completes for this long: the backend is stuck */
#define SECTOR VIRTIO_BLK_SECTOR_SIZE

/* The verify table: per block, the generation last written, and an in-flight bit. */
#define GEN_BUSY 0x80000000u
#define GEN_MASK 0x7fffffffu
#define GEN_UNKNOWN GEN_MASK          /* a failed write left the content unknown */

#define BIT(n) (1ull << (n))

enum rw_mode { RW_READ, RW_WRITE, RW_RANDREAD, RW_RANDWRITE, RW_RANDRW };

/* --rw's names, indexed by enum rw_mode (blk_args.c). */
extern const char *const blk_rw_names[RW_RANDRW + 1];

struct blk_opts {
	const char *socket;
	enum rw_mode rw;
	uint32_t bs;
	unsigned iodepth, queues, seconds, rwmixread, spin_us;
	uint64_t size;
	bool verify, machine, info, packed, iommu, no_event_idx, no_indirect;
	bool reconnect; /* a backend that goes away is waited for and resumed */
	bool log;       /* dirty logging on for the whole load (its cost) */
	const char *migrate_to; /* live-migrate to this socket during the load */
	unsigned migrate_at;    /* seconds into the load (0: half way) */
};

/* --reconnect: how long a restarted backend may take to listen again. */
#define BLK_RECONNECT_NS 30000000000ull

/* What the device told us, and what we planned from it. */
struct blk_dev {
	uint64_t features;
	uint64_t capacity;            /* bytes */
	unsigned num_queues;          /* 0: not reported */
	uint32_t blk_size, seg_max, size_max; /* 0: not offered */
	uint32_t seg_bytes;           /* a request's data is cut in pieces of this size */
	unsigned nseg;                /* data segments per request */
	uint16_t qsize, indirect_max;
};

struct blk_job;

struct io_slot {
	struct blk_job *job;
	void *buf;
	struct iovec *iov;  /* nseg pieces of buf */
	uint64_t block;
	uint64_t t0;
	uint32_t gen;       /* the pattern a write carries or a read must find; 0: unchecked */
	uint32_t gen_before; /* the table entry before this request (undo on a failed submit) */
	bool write;
};

/* The first of a kind, with when it happened, so the run reports the earliest. */
struct blk_event {
	uint64_t at_ns;     /* 0: none */
	uint64_t sector;
	int status;         /* I/O error: the status; mismatch: the generation expected */
	bool write;
	const char *what;
};

struct blk_job {
	struct blk_run *run;
	unsigned q;
	uint64_t first, nblocks, cursor, rng;
	struct io_slot *slots;
	struct io_slot **done;      /* completed in this poll, awaiting their timestamp */
	struct io_slot **free;      /* a stack of the slots not in flight */
	unsigned inflight, ndone, nfree, idle_loops;
	bool timed;                 /* the load (counted), not the read-back */
	bool wrote;
	uint64_t batch_ns, last_done_ns, end_ns;
	_Atomic uint64_t ops, bytes; /* read by the progress line */
	uint64_t errors, checked, mismatches;
	struct blk_event first_err, first_bad;
	struct lat_hist lat;
	int fatal;                  /* negative errno that ended the job early */
	atomic_bool finished;       /* the thread is about to return */
	atomic_bool paused;         /* --migrate-to: parked, touching no guest memory */
	pthread_t tid;
};

struct blk_run {
	struct blk_opts o;
	struct blk_dev d;
	struct vio_vhu_frontend *f;
	struct vio_blk_client *c;
	unsigned reconnects; /* --reconnect: times the backend came back */
	uint32_t *gen;              /* --verify: per block; each entry owned by one queue */
	uint64_t seed;              /* patterns differ from one run to the next */
	atomic_bool stop;
	bool stuck;                 /* the backend stopped answering: do not wait for it again */
	struct blk_job *jobs;
	/* blk_migrate.c */
	atomic_bool pause;          /* jobs park (a VM's vCPUs stopped for the switch-over) */
	uint64_t *cpu_dirty;        /* pages our own threads wrote (a VMM's dirty log of the vCPUs) */
	uint64_t *dirty;            /* scratch bitmap */
	size_t log_words;
	void *client_area;          /* the blk client's request headers, written by us */
	size_t client_area_len;
	uint64_t log_next_ns;       /* --log: next bitmap collection */
	bool migrated;
	int migrate_err;
};

/* Set by SIGINT (blk.c). */
extern volatile sig_atomic_t blk_interrupted;

static inline uint64_t blk_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t blk_block_sector(const struct blk_run *run, uint64_t block)
{
	return block * (run->o.bs / SECTOR);
}

/* blk_args.c. 0 run, 1 exit 0 (help), -EINVAL usage error (reported). */
int blk_parse_args(int argc, char **argv, struct blk_opts *o);

/* blk_setup.c: main thread only. Errors are reported; 0 or a negative errno. */
int blk_open_device(struct blk_run *run);
int blk_setup_jobs(struct blk_run *run);
void blk_free_jobs(struct blk_run *run);

/* blk_verify.c: a job's thread, on its own blocks; blk_setup_verify: main thread. */
int blk_setup_verify(struct blk_run *run, uint64_t nblocks);
void blk_verify_prepare(struct blk_run *run, struct io_slot *s);
void blk_check_read(struct blk_job *j, const struct io_slot *s);

/*
 * blk_migrate.c. blk_log_setup (main thread, before the jobs start): --log
 * and --migrate-to set-up. blk_log_tick (main thread, from the progress
 * loop): --log collects the bitmap once a second; --migrate-to migrates
 * once its time comes. blk_mark_cpu (a job's thread): it wrote into guest
 * memory. blk_job_park (a job's thread): park while the run says pause.
 */
int blk_log_setup(struct blk_run *run);
void blk_log_tick(struct blk_run *run, uint64_t t0);
void blk_mark_cpu(struct blk_run *run, const void *p, size_t len);
void blk_job_park(struct blk_job *j);
void blk_log_free(struct blk_run *run);

/* blk_report.c: blk_note_event on a job's thread, the rest on the main thread. */
void blk_note_event(struct blk_event *e, uint64_t sector, int status, bool write,
		    const char *what);
void blk_progress(struct blk_run *run, uint64_t t0);
int blk_report(const struct blk_run *run, uint64_t t0);
void blk_print_info(const struct blk_run *run);

#endif
