/* SPDX-License-Identifier: MIT */
/*
 * Leaks on purpose, for lsan_canary.sh: in a build with AddressSanitizer a
 * run of this program that LeakSanitizer does not fail means every leak
 * check of that run is void (leak detection off, or unable to work, as
 * under ptrace). Not a test of vio; never linked with it.
 */
#include <stdlib.h>

static void *volatile sink;

static __attribute__((noinline)) void leak(void)
{
	sink = malloc(4096);
	sink = NULL;
}

int main(void)
{
	for (int i = 0; i < 16; i++)
		leak();
	return 0;
}
