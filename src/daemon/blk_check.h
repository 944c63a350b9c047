/* SPDX-License-Identifier: MIT */
/*
 * Checks of a --blk device's backing store before viod opens it, so that an
 * operator gets a message naming the problem (a character device, a file
 * smaller than a sector, a RAM disk larger than the memory available)
 * instead of "Invalid argument" or the OOM killer.
 */
#ifndef VIOD_BLK_CHECK_H
#define VIOD_BLK_CHECK_H

#include <stddef.h>

#include "blk_spec.h"

/* 0, or -EINVAL / -ENOMEM / -errno with a message for the operator in err. */
int blk_spec_check(const struct blk_spec *spec, char *err, size_t errlen);

#endif
