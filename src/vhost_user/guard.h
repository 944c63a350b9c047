/* SPDX-License-Identifier: MIT */
/*
 * The SIGBUS guard over front-end memory: a mapping the front-end can still
 * shrink (an unsealed memfd, a tmpfs or hugetlbfs file) faults with SIGBUS
 * when a page past the new end is touched. Registered mappings are swapped
 * for anonymous pages on such a fault and their owner is told, so the
 * device fails and the process lives on.
 */
#ifndef VIO_VHU_GUARD_H
#define VIO_VHU_GUARD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

struct vhu_guard {
	void *start;
	size_t len;
	atomic_bool *lost; /* set when the mapping was lost */
	int wake_fd;       /* eventfd written then (the owner's loop wakes) */
	int slot;          /* index in the registry, -1 when not registered */
};

/*
 * Register g (its fields set, g outliving the registration): 0, or -ENOSPC
 * when the registry is full (the mapping is then simply not guarded).
 * Control thread only, like vhu_guard_remove, which must run before the
 * mapping is unmapped.
 */
int vhu_guard_add(struct vhu_guard *g);
void vhu_guard_remove(struct vhu_guard *g);

/* Whether vio_vhu_guard_sigbus has installed the handler. */
bool vhu_guard_active(void);

#endif
