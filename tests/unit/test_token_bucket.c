/* SPDX-License-Identifier: MIT */
/*
 * The token bucket blk and net share (src/core/token_bucket.c), driven by a
 * clock the test sets: default burst, refill up to the burst, debt, waits,
 * unlimited, and no overflow at gigabytes per second over long idle spells.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/token_bucket.h"

#define MS 1000000ull
#define S 1000000000ull

static void test_burst_and_refill(void **state)
{
	struct vio_bucket b = { 0 };
	uint64_t t = 5 * S;

	vio_bucket_set(&b, 1000, 0, t);
	assert_int_equal(atomic_load(&b.burst), 100); /* a tenth of a second */
	for (int i = 0; i < 100; i++)
		assert_true(vio_bucket_take(&b, 1, t));
	assert_false(vio_bucket_take(&b, 1, t));
	assert_int_equal(vio_bucket_wait_ns(&b, 1, t), 1 * MS);
	assert_int_equal(vio_bucket_avail(&b, t + 50 * MS), 50);
	/* Idle for long: never more than the burst. */
	assert_int_equal(vio_bucket_avail(&b, t + 100 * S), 100);
	assert_int_equal(vio_bucket_wait_ns(&b, 1, t + 100 * S), 0);
}

static void test_exact_rate(void **state)
{
	struct vio_bucket b = { 0 };
	uint64_t t = 0, taken = 0;

	vio_bucket_set(&b, 3000, 30, t);
	/* Take one whenever possible, checking every 100 us for 2 s: 30 + 3000 * 2. */
	for (t = 0; t <= 2 * S; t += 100000)
		while (vio_bucket_take(&b, 1, t))
			taken++;
	assert_true(taken >= 6029 && taken <= 6031);
}

static void test_debt(void **state)
{
	struct vio_bucket b = { 0 };

	vio_bucket_set(&b, 8000, 800, 0);
	assert_true(vio_bucket_avail(&b, 0) > 0);
	vio_bucket_charge(&b, 2400); /* a burst costs more than there was */
	assert_int_equal(vio_bucket_avail(&b, 0), -1600);
	/* 1601 tokens to earn at 8000/s before any: 200.125 ms. */
	assert_int_equal(vio_bucket_wait_ns(&b, 0, 0), 200125000);
	assert_true(vio_bucket_avail(&b, 200 * MS) <= 0);
	assert_true(vio_bucket_avail(&b, 201 * MS) > 0);
	/* A request above the burst goes when the bucket is full, and leaves a debt. */
	assert_true(vio_bucket_take(&b, 5000, 10 * S));
	assert_int_equal(vio_bucket_avail(&b, 10 * S), 800 - 5000);
}

static void test_unlimited_and_give_back(void **state)
{
	struct vio_bucket b = { 0 };

	vio_bucket_set(&b, 0, 0, 0);
	assert_false(vio_bucket_limited(&b));
	assert_true(vio_bucket_take(&b, 1ull << 40, 0));
	assert_int_equal(vio_bucket_avail(&b, 0), INT64_MAX);
	assert_int_equal(vio_bucket_wait_ns(&b, 1, 0), 0);
	vio_bucket_set(&b, 10, 1, 0);
	assert_true(vio_bucket_take(&b, 1, 0));
	assert_false(vio_bucket_take(&b, 1, 0));
	vio_bucket_give_back(&b, 1);
	assert_true(vio_bucket_take(&b, 1, 0));
}

static void test_big_rates(void **state)
{
	struct vio_bucket b = { 0 };
	uint64_t rate = 40ull << 30; /* 40 GiB/s: rate * ns passes 64 bits within a second */

	vio_bucket_set(&b, rate, 0, 0);
	vio_bucket_charge(&b, rate / 10);
	assert_int_equal(vio_bucket_avail(&b, 0), 0);
	assert_int_equal(vio_bucket_avail(&b, 50 * MS), (int64_t)(rate / 20));
	assert_int_equal(vio_bucket_avail(&b, 3600 * S), (int64_t)(rate / 10));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burst_and_refill),
		cmocka_unit_test(test_exact_rate),
		cmocka_unit_test(test_debt),
		cmocka_unit_test(test_unlimited_and_give_back),
		cmocka_unit_test(test_big_rates),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
