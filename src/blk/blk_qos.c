/* SPDX-License-Identifier: MIT */
/*
 * Rate limits of one virtio-blk device: an IOPS and a bytes-per-second
 * token bucket (core/token_bucket.h), shared by the device's queues (each
 * on its own thread). A request takes its tokens when it starts; one that
 * finds too few waits in its queue, in order, until the buckets refill. The
 * other devices never see these buckets: a limited device cannot slow them.
 */
#include "blk_internal.h"

bool blk_qos_take(struct vio_blk *blk, uint32_t bytes, uint64_t now_ns)
{
	if (!vio_bucket_take(&blk->iops, 1, now_ns))
		return false;
	if (!vio_bucket_take(&blk->bps, bytes, now_ns)) {
		vio_bucket_give_back(&blk->iops, 1);
		return false;
	}
	return true;
}

uint64_t blk_qos_wait_ns(const struct vio_blk *blk, uint32_t bytes, uint64_t now_ns)
{
	uint64_t a = vio_bucket_wait_ns(&blk->iops, 1, now_ns);
	uint64_t b = vio_bucket_wait_ns(&blk->bps, bytes, now_ns);

	return a > b ? a : b;
}
