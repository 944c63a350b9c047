/* SPDX-License-Identifier: MIT */
/*
 * The SIGBUS guard (see guard.h). The handler only reads the registry,
 * calls mmap and write (both async-signal-safe) and stores two atomics;
 * a fault outside every registered mapping goes to the handler that was
 * there before, or kills the process as SIGBUS always did.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "guard.h"
#include "vio/vhost_user.h"

/* Every backend's regions: 32 per front-end, for a few hundred front-ends. */
#define GUARD_SLOTS 8192

static _Atomic(struct vhu_guard *) registry[GUARD_SLOTS];
static atomic_bool installed;
static struct sigaction previous;

int vhu_guard_add(struct vhu_guard *g)
{
	for (int i = 0; i < GUARD_SLOTS; i++) {
		struct vhu_guard *none = NULL;

		if (atomic_load_explicit(&registry[i], memory_order_relaxed))
			continue;
		g->slot = i;
		/* Release: the handler that finds g sees its fields. */
		if (atomic_compare_exchange_strong_explicit(&registry[i], &none, g,
							    memory_order_release,
							    memory_order_relaxed))
			return 0;
	}
	g->slot = -1;
	return -ENOSPC;
}

void vhu_guard_remove(struct vhu_guard *g)
{
	if (g->slot >= 0)
		atomic_store_explicit(&registry[g->slot], NULL, memory_order_release);
	g->slot = -1;
}

bool vhu_guard_active(void)
{
	return atomic_load(&installed);
}

static void on_sigbus(int sig, siginfo_t *si, void *ctx)
{
	uintptr_t a = (uintptr_t)si->si_addr;
	int saved = errno;

	for (int i = 0; i < GUARD_SLOTS; i++) {
		struct vhu_guard *g = atomic_load_explicit(&registry[i], memory_order_acquire);
		uint64_t one = 1;

		if (!g || a < (uintptr_t)g->start || a - (uintptr_t)g->start >= g->len)
			continue;
		/* Zero pages where the file's pages were: the faulting access completes. */
		if (mmap(g->start, g->len, PROT_READ | PROT_WRITE,
			 MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0) == MAP_FAILED)
			break;
		atomic_store(g->lost, true);
		if (write(g->wake_fd, &one, sizeof(one)) < 0)
			(void)0; /* the flag is set; the owner sees it on its next wake-up */
		errno = saved;
		return;
	}
	errno = saved;
	if (previous.sa_flags & SA_SIGINFO) {
		if (previous.sa_sigaction)
			previous.sa_sigaction(sig, si, ctx);
		return;
	}
	if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
		previous.sa_handler(sig);
		return;
	}
	/* Not ours: fault again with the default action, as if we were never here. */
	signal(SIGBUS, SIG_DFL);
}

int vio_vhu_guard_sigbus(void)
{
	struct sigaction sa;

	if (atomic_exchange(&installed, true))
		return 0;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigbus;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, &previous) < 0) {
		atomic_store(&installed, false);
		return -errno;
	}
	return 0;
}
