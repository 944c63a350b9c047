/* SPDX-License-Identifier: MIT */
/*
 * Built instead of engine_uring.c when liburing is absent: file-backed
 * devices are then refused with -ENOTSUP. Holds no state, opens nothing.
 */
#include <errno.h>

#include "blk_engine.h"

int blk_engine_uring_open(const char *path, bool readonly, bool direct,
			  const struct blk_lock *lock, struct blk_engine **out)
{
	return -ENOTSUP;
}
