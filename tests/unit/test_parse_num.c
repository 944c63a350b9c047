/* SPDX-License-Identifier: MIT */
/*
 * The one number grammar (src/util/parse_num.h): every form it accepts,
 * every malformed or out-of-range input it refuses, and the difference
 * between the two (-EINVAL vs -ERANGE).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "util/parse_num.h"

static uint64_t size_of(const char *s)
{
	uint64_t v = 0;

	assert_int_equal(parse_size(s, 0, UINT64_MAX, &v), 0);
	return v;
}

static void test_size_units(void **state)
{
	assert_true(size_of("0") == 0);
	assert_true(size_of("4096") == 4096);
	assert_true(size_of("512B") == 512);
	assert_true(size_of("4k") == 4096);
	assert_true(size_of("4K") == 4096);
	assert_true(size_of("4KB") == 4096);
	assert_true(size_of("4KiB") == 4096);
	assert_true(size_of("4kib") == 4096);
	assert_true(size_of("512M") == 512ull << 20);
	assert_true(size_of("1GiB") == 1ull << 30);
	assert_true(size_of("2T") == 2ull << 40);
	assert_true(size_of("16777215T") == 16777215ull << 40);
}

static void test_size_refused(void **state)
{
	static const char *const bad[] = { "", "-1", "+1", " 1", "1 ", "1.5G", "0x10", "G", "1Q",
					   "1KiBB", "1iB", "1Ki", "1GG", "k1" };
	uint64_t v;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse_size(bad[i], 0, UINT64_MAX, &v) != -EINVAL)
			fail_msg("'%s' accepted or misjudged", bad[i]);
	assert_int_equal(parse_size("99999999999999999999", 0, UINT64_MAX, &v), -ERANGE);
	assert_int_equal(parse_size("16777216T", 0, UINT64_MAX, &v), -ERANGE); /* 2^64 */
	assert_int_equal(parse_size("17179869184G", 0, UINT64_MAX, &v), -ERANGE);
	assert_int_equal(parse_size("0", 1, UINT64_MAX, &v), -ERANGE);
	assert_int_equal(parse_size("5M", 1, 4u << 20, &v), -ERANGE);
	assert_int_equal(parse_size("4M", 1, 4u << 20, &v), 0);
}

static void test_count(void **state)
{
	uint64_t v;

	assert_int_equal(parse_count("0", 0, 10, &v), 0);
	assert_true(v == 0);
	assert_int_equal(parse_count("10", 0, 10, &v), 0);
	assert_true(v == 10);
	assert_int_equal(parse_count("18446744073709551615", 0, UINT64_MAX, &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(parse_count("18446744073709551616", 0, UINT64_MAX, &v), -ERANGE);
	assert_int_equal(parse_count("11", 0, 10, &v), -ERANGE);
	assert_int_equal(parse_count("0", 1, 10, &v), -ERANGE);
	assert_int_equal(parse_count("4k", 0, UINT64_MAX, &v), -EINVAL);
	assert_int_equal(parse_count("-3", 0, 10, &v), -EINVAL);
	assert_int_equal(parse_count("", 0, 10, &v), -EINVAL);
	assert_int_equal(parse_count("0x5", 0, 10, &v), -EINVAL);
}

static void test_format(void **state)
{
	char b[32];

	format_size(512, b, sizeof(b));
	assert_string_equal(b, "512 bytes");
	format_size(4096, b, sizeof(b));
	assert_string_equal(b, "4 KiB");
	format_size(3ull << 29, b, sizeof(b));
	assert_string_equal(b, "1.5 GiB");
	format_size(1, b, sizeof(b));
	assert_string_equal(b, "1 byte");
	format_size(1048575, b, sizeof(b));
	assert_string_equal(b, "1.0 MiB");
	format_size(UINT64_MAX, b, sizeof(b));
	assert_string_equal(b, "16 EiB");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_size_units),
		cmocka_unit_test(test_size_refused),
		cmocka_unit_test(test_count),
		cmocka_unit_test(test_format),
	};
	return cmocka_run_group_tests_name("parse_num", tests, NULL, NULL);
}
