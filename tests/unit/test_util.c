/* SPDX-License-Identifier: MIT */
/* Helpers several unit-test groups share: fd counting for leak checks, byte scans. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "test_util.h"

#ifdef VIO_TEST_TSAN
#include <sanitizer/common_interface_defs.h>

/*
 * Under ThreadSanitizer the first report, suppressed ones included (see
 * tests/unit/tsan.supp), starts llvm-symbolizer, whose two pipes would then
 * count as fds the test leaked. Start it before the first count.
 */
static void start_symbolizer(void)
{
	static bool started;
	char buf[128];

	if (started)
		return;
	started = true;
	__sanitizer_symbolize_pc(__builtin_return_address(0), "%p %F %L", buf, sizeof(buf));
}
#else
static void start_symbolizer(void)
{
}
#endif

int count_fds(void)
{
	DIR *d;
	struct dirent *e;
	int n = 0;

	start_symbolizer();
	d = opendir("/proc/self/fd");
	assert_non_null(d);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

bool all_byte(const uint8_t *b, size_t len, uint8_t v)
{
	for (size_t i = 0; i < len; i++)
		if (b[i] != v)
			return false;
	return true;
}
