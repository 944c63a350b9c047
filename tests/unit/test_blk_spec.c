/* SPDX-License-Identifier: MIT */
/* viod's --blk syntax: accepted forms, defaults, and errors that name the bad part. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "daemon/blk_spec.h"

static void test_file_form(void **state)
{
	struct blk_spec s;
	char err[256] = "";

	assert_int_equal(blk_spec_parse("sock=/tmp/a.sock,file=/dev/sdb,queues=4,readonly,direct", &s,
					err, sizeof(err)), 0);
	assert_string_equal(s.sock, "/tmp/a.sock");
	assert_string_equal(s.file, "/dev/sdb");
	assert_int_equal(s.queues, 4);
	assert_true(s.readonly && s.direct);
	assert_int_equal(s.ram_size, 0);
}

static void test_ram_form_and_defaults(void **state)
{
	struct blk_spec s;
	char err[256] = "";

	assert_int_equal(blk_spec_parse("sock=x.sock,ram=512M", &s, err, sizeof(err)), 0);
	assert_true(s.ram_size == 512ull << 20);
	assert_int_equal(s.queues, 1);
	assert_false(s.readonly || s.direct);
	assert_int_equal(blk_spec_parse("ram=1G,sock=y", &s, err, sizeof(err)), 0);
	assert_true(s.ram_size == 1ull << 30);
	assert_int_equal(blk_spec_parse("sock=z,null=2G,queues=2", &s, err, sizeof(err)), 0);
	assert_true(s.null_size == 2ull << 30 && s.ram_size == 0 && s.queues == 2);
	assert_true(s.iops == 0 && s.bps == 0);
}

static void test_rate_limits(void **state)
{
	struct blk_spec s;
	char err[256] = "";

	assert_int_equal(blk_spec_parse("sock=x,ram=1G,iops=5000,bps=100M,iops_burst=50,bps_burst=1M",
					&s, err, sizeof(err)), 0);
	assert_true(s.iops == 5000 && s.iops_burst == 50);
	assert_true(s.bps == 100ull << 20 && s.bps_burst == 1ull << 20);
}

static void expect_error(const char *text, const char *needle)
{
	struct blk_spec s;
	char err[256] = "";

	assert_int_equal(blk_spec_parse(text, &s, err, sizeof(err)), -22);
	if (!strstr(err, needle))
		fail_msg("'%s': error '%s' does not mention '%s'", text, err, needle);
}

static void test_errors_name_the_input(void **state)
{
	expect_error("file=/x,queues=2", "sock");
	expect_error("sock=x,ram=1G,iops=0", "iops=0");
	expect_error("sock=x,ram=1G,bps=lots", "bps=lots");
	expect_error("sock=x,ram=1G,iops=1,iops=2", "'iops' given twice");
	expect_error("sock=x,ram=1G,pps=1", "unknown key 'pps'");
	expect_error("sock=a", "file=PATH, ram=SIZE or null=SIZE");
	expect_error("sock=a,ram=1G,null=1G", "exactly one");
	expect_error("sock=a,null=3x", "null=3x");
	expect_error("sock=a,file=b,ram=1G", "exactly one");
	expect_error("sock=a,ram=12Q", "ram=12Q");
	expect_error("sock=a,ram=0", "ram=0");
	expect_error("sock=a,ram=1000", "multiple of 512");
	expect_error("sock=a,ram=1G,queues=0", "queues=0");
	expect_error("sock=a,ram=1G,queues=65", "queues=65");
	expect_error("sock=a,ram=1G,queues=2x", "queues=2x");
	expect_error("sock=a,ram=1G,colour=blue", "colour");
	expect_error("sock=a,sock=b,ram=1G", "twice");
	expect_error("sock=a,ram=1G,direct", "direct");
	expect_error("sock=a,ram=1G,readonly=yes", "readonly");
	expect_error("sock=,ram=1G", "sock");
	expect_error("sock=a,ram=1G,queues=2,queues=4", "'queues' given twice");
	expect_error("sock=a,ram=1G,readonly,readonly", "'readonly' given twice");
	expect_error("sock=a,ram=1G,ram=2G", "'ram' given twice");
	expect_error("sock=a,ram=4Q", "ram=4Q");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_file_form),
		cmocka_unit_test(test_ram_form_and_defaults),
		cmocka_unit_test(test_rate_limits),
		cmocka_unit_test(test_errors_name_the_input),
	};
	return cmocka_run_group_tests_name("blk_spec", tests, NULL, NULL);
}
