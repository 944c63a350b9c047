/* SPDX-License-Identifier: MIT */
/**
 * @file blk.h
 * virtio-blk (virtio 1.2, 5.2): the spec's constants and wire structures, and
 * the device-side block device vio serves over any transport (it is a
 * struct vio_vdev). Backing store: anonymous RAM, or a file / block device
 * driven through io_uring when libvio was built with liburing.
 */
#ifndef VIO_BLK_H
#define VIO_BLK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vio/export.h"
#include "vio/vdev.h"

#define VIRTIO_ID_BLOCK 2

/** Feature bits (spec 5.2.3). */
#define VIRTIO_BLK_F_SIZE_MAX 1
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_GEOMETRY 4
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_TOPOLOGY 10
#define VIRTIO_BLK_F_CONFIG_WCE 11
#define VIRTIO_BLK_F_MQ 12
#define VIRTIO_BLK_F_DISCARD 13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/** Request types (spec 5.2.6). */
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_T_GET_LIFETIME 10
#define VIRTIO_BLK_T_DISCARD 11
#define VIRTIO_BLK_T_WRITE_ZEROES 13
#define VIRTIO_BLK_T_SECURE_ERASE 14

/** Status byte values. */
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2

#define VIRTIO_BLK_SECTOR_SIZE 512
#define VIRTIO_BLK_ID_BYTES 20
/** flags.unmap of a discard / write-zeroes segment (bit 0). */
#define VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP 1u

/** What a request starts with (the readable part's first 16 bytes). */
struct virtio_blk_outhdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

/** One segment of a discard or write-zeroes request. */
struct virtio_blk_discard_write_zeroes {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
};

struct virtio_blk_geometry {
	uint16_t cylinders;
	uint8_t heads;
	uint8_t sectors;
};

struct virtio_blk_topology {
	uint8_t physical_block_exp; /**< log2 of logical blocks per physical block */
	uint8_t alignment_offset;
	uint16_t min_io_size;       /**< in logical blocks */
	uint32_t opt_io_size;       /**< in logical blocks */
};

/** Config space, little-endian, up to the fields vio serves (spec 5.2.4). */
struct virtio_blk_config {
	uint64_t capacity; /**< in 512-byte sectors, always present */
	uint32_t size_max;
	uint32_t seg_max;
	struct virtio_blk_geometry geometry;
	uint32_t blk_size;
	struct virtio_blk_topology topology;
	uint8_t writeback;
	uint8_t unused0;
	uint16_t num_queues;
	uint32_t max_discard_sectors;
	uint32_t max_discard_seg;
	uint32_t discard_sector_alignment;
	uint32_t max_write_zeroes_sectors;
	uint32_t max_write_zeroes_seg;
	uint8_t write_zeroes_may_unmap;
	uint8_t unused1[3];
	uint32_t max_secure_erase_sectors;
	uint32_t max_secure_erase_seg;
	uint32_t secure_erase_sector_alignment;
};

_Static_assert(sizeof(struct virtio_blk_outhdr) == 16, "spec layout");
_Static_assert(sizeof(struct virtio_blk_discard_write_zeroes) == 16, "spec layout");
_Static_assert(offsetof(struct virtio_blk_config, blk_size) == 20, "spec layout");
_Static_assert(offsetof(struct virtio_blk_config, num_queues) == 34, "spec layout");
_Static_assert(offsetof(struct virtio_blk_config, write_zeroes_may_unmap) == 56, "spec layout");
_Static_assert(offsetof(struct virtio_blk_config, max_secure_erase_sectors) == 60, "spec layout");

/** Config bytes the vio device exposes: everything before the secure-erase fields. */
#define VIO_BLK_CONFIG_LEN ((uint32_t)offsetof(struct virtio_blk_config, max_secure_erase_sectors))

/** Limits the vio device advertises (and enforces). */
#define VIO_BLK_SEG_MAX 126            /* data segments per request */
#define VIO_BLK_SIZE_MAX (1u << 20)    /* bytes per segment (advisory) */
#define VIO_BLK_MAX_DWZ_SEG 16         /* discard / write-zeroes segments per request */
#define VIO_BLK_MAX_DWZ_SECTORS (1u << 22)
#define VIO_BLK_MAX_QUEUES 64

/* ---- the device ---- */

/** Longest device name kept for log lines. */
#define VIO_BLK_NAME_MAX 128

/** What requests are counted as. */
enum vio_blk_op {
	VIO_BLK_OP_READ, VIO_BLK_OP_WRITE, VIO_BLK_OP_FLUSH, VIO_BLK_OP_DISCARD,
	VIO_BLK_OP_WRITE_ZEROES, VIO_BLK_OP_GET_ID, VIO_BLK_OP_OTHER, VIO_BLK_OP_COUNT
};

/** Why requests failed: the store failed, the type is unsupported, the chain was misshaped. */
enum vio_blk_err { VIO_BLK_ERR_IOERR, VIO_BLK_ERR_UNSUPP, VIO_BLK_ERR_MALFORMED, VIO_BLK_ERR_COUNT };

/** Latency buckets: bucket i counts requests that took [2^i, 2^(i+1)) us; 0 below 2 us. */
#define VIO_BLK_LAT_BUCKETS 20

/** A device's counters (one queue's, or all queues' summed). */
struct vio_blk_stats {
	uint64_t ops[VIO_BLK_OP_COUNT];          /**< requests completed, by kind */
	uint64_t read_bytes, write_bytes;        /**< data moved by successful reads / writes */
	uint64_t errors[VIO_BLK_ERR_COUNT];      /**< requests failed, by cause */
	uint64_t throttled;                      /**< requests the rate limits held back */
	uint64_t latency[VIO_BLK_LAT_BUCKETS];   /**< completed requests by latency */
	uint64_t latency_sum_ns;                 /**< their latencies added up */
};

/** Rate limits of a device (0: none); bursts default to a tenth of a second's worth. */
struct vio_blk_qos {
	uint64_t iops, iops_burst;
	uint64_t bps, bps_burst; /**< bytes per second */
};

struct vio_blk_opts {
	const char *name;   /**< owner of the device's log lines (NULL: the file, or "blk") */
	const char *file;   /**< raw image or block device; NULL: RAM */
	uint64_t ram_size;  /**< bytes, multiple of 512, when file is NULL */
	uint64_t null_size; /* instead of ram_size: a disk that stores nothing, reads zeroes
			       (to measure the request path, like qsd's null-co) */
	unsigned queues;    /**< 1..VIO_BLK_MAX_QUEUES (0 means 1) */
	bool readonly;      /**< offer VIRTIO_BLK_F_RO, open O_RDONLY, refuse writes */
	bool direct;        /**< O_DIRECT (file only) */
	const char *serial; /**< GET_ID answer, at most 20 bytes used; NULL: "vio" */
	uint64_t offset;    /**< the device is the window [offset, offset + length) of the */
	uint64_t length;    /**< store (bytes, sector multiples; length 0: to the end) */
};

struct vio_blk;

/**
 * Open the backing store and build the config space. Returns 0, -EINVAL for
 * bad options (no backing, size not a multiple of 512, too many queues),
 * -ENOTSUP for a file when libvio has no io_uring engine, or the errno of
 * opening / sizing the file (O_DIRECT on a filesystem without it: -EINVAL).
 */
VIO_API int vio_blk_new(const struct vio_blk_opts *opts, struct vio_blk **out);

/** The device as transports and pollers see it; valid until vio_blk_free. */
VIO_API struct vio_vdev vio_blk_vdev(struct vio_blk *blk);

VIO_API uint64_t vio_blk_capacity_bytes(const struct vio_blk *blk);

/**
 * Change the capacity (bytes, a multiple of the block size). A file grows
 * (ftruncate) if the device needs it; RAM and null disks cannot grow past
 * what they were made with, nor a window (length given) past its length
 * (-ENOSPC). Requests beyond the new end fail from
 * now on; tell the driver (a transport's config-change notification). Control
 * thread; queues may run. 0, -EINVAL, -EROFS, -ENOSPC or the file's errno.
 */
VIO_API int vio_blk_resize(struct vio_blk *blk, uint64_t bytes);

/** Counters of queue q, or of all queues summed (q < 0). Any thread. 0 or -EINVAL. */
VIO_API int vio_blk_get_stats(const struct vio_blk *blk, int q, struct vio_blk_stats *st);
VIO_API const char *vio_blk_op_str(enum vio_blk_op op);
VIO_API const char *vio_blk_err_str(enum vio_blk_err err);

/**
 * Set the rate limits, shared by all the device's queues (requests beyond
 * them wait in their queue, in order; other devices are not affected).
 * Control thread; queues may run. 0.
 */
VIO_API int vio_blk_set_qos(struct vio_blk *blk, const struct vio_blk_qos *qos);
VIO_API void vio_blk_get_qos(const struct vio_blk *blk, struct vio_blk_qos *qos);

/** Free. Every started queue must have been stopped (queue_stop). NULL is fine. */
VIO_API void vio_blk_free(struct vio_blk *blk);

#endif
