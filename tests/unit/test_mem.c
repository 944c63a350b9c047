/* SPDX-License-Identifier: MIT */
/*
 * The guest memory map: what vio_mem_add accepts and refuses, and that
 * translate (and the host reverse lookup) return a pointer only for
 * a non-empty range wholly inside one region.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/mem_internal.h"

static uint8_t host_a[4096], host_b[4096], host_c[8192];

#define GA 0x100000000ull
#define GB (GA + sizeof(host_a)) /* adjacent to A in guest space */
#define GC 0x200000000ull

static void two_adjacent(struct vio_mem *m)
{
	struct vio_mem_region a = { GA, sizeof(host_a), host_a };
	struct vio_mem_region b = { GB, sizeof(host_b), host_b };

	vio_mem_init(m);
	assert_int_equal(vio_mem_add(m, &a), 0);
	assert_int_equal(vio_mem_add(m, &b), 0);
	assert_int_equal(m->nregions, 2);
}

static void test_add_rejects_zero_size(void **state)
{
	struct vio_mem m;
	struct vio_mem_region r = { GA, 0, host_a };

	vio_mem_init(&m);
	assert_int_equal(vio_mem_add(&m, &r), -EINVAL);
	assert_int_equal(m.nregions, 0);
}

static void test_add_rejects_wrap(void **state)
{
	struct vio_mem m;
	struct vio_mem_region gpa_wraps = { UINT64_MAX - 100, 4096, host_a };
	struct vio_mem_region host_wraps = { GA, 4096, (void *)(UINTPTR_MAX - 100) };
	struct vio_mem_region last_page = { UINT64_MAX - 4095, 4096, host_a };

	vio_mem_init(&m);
	assert_int_equal(vio_mem_add(&m, &gpa_wraps), -EINVAL);
	assert_int_equal(vio_mem_add(&m, &host_wraps), -EINVAL);
	assert_int_equal(m.nregions, 0);
	/* ending exactly at 2^64 does not wrap */
	assert_int_equal(vio_mem_add(&m, &last_page), 0);
	assert_ptr_equal(vio_mem_translate(&m, UINT64_MAX, 1), host_a + 4095);
	assert_null(vio_mem_translate(&m, UINT64_MAX, 2));
}

static void test_add_rejects_overlap(void **state)
{
	struct vio_mem m;
	struct vio_mem_region a = { GA, 4096, host_a };
	struct vio_mem_region same = a;
	struct vio_mem_region tail = { GA + 4095, 4096, host_b };
	struct vio_mem_region head = { GA - 4095, 4096, host_b };
	struct vio_mem_region inside = { GA + 16, 16, host_b };
	struct vio_mem_region around = { GA - 16, 8192, host_c };
	struct vio_mem_region before = { GA - 4096, 4096, host_b };
	struct vio_mem_region after = { GA + 4096, 4096, host_c };

	vio_mem_init(&m);
	assert_int_equal(vio_mem_add(&m, &a), 0);
	assert_int_equal(vio_mem_add(&m, &same), -EEXIST);
	assert_int_equal(vio_mem_add(&m, &tail), -EEXIST);
	assert_int_equal(vio_mem_add(&m, &head), -EEXIST);
	assert_int_equal(vio_mem_add(&m, &inside), -EEXIST);
	assert_int_equal(vio_mem_add(&m, &around), -EEXIST);
	assert_int_equal(m.nregions, 1);
	/* touching is not overlapping */
	assert_int_equal(vio_mem_add(&m, &before), 0);
	assert_int_equal(vio_mem_add(&m, &after), 0);
	assert_int_equal(m.nregions, 3);
}

static void test_add_full_map(void **state)
{
	struct vio_mem m;
	struct vio_mem_region r;

	vio_mem_init(&m);
	for (unsigned i = 0; i < VIO_MEM_MAX_REGIONS; i++) {
		r = (struct vio_mem_region){ GA + i * 0x10000ull, 4096, host_a };
		assert_int_equal(vio_mem_add(&m, &r), 0);
	}
	r = (struct vio_mem_region){ GC, 4096, host_b };
	assert_int_equal(vio_mem_add(&m, &r), -ENOSPC);
	assert_int_equal(m.nregions, VIO_MEM_MAX_REGIONS);
	/* removing one makes room again */
	assert_int_equal(vio_mem_remove(&m, GA + 5 * 0x10000ull, 4096), 0);
	assert_int_equal(vio_mem_add(&m, &r), 0);
	assert_ptr_equal(vio_mem_translate(&m, GC + 1, 1), host_b + 1);
}

static void test_translate_inside(void **state)
{
	struct vio_mem m;

	two_adjacent(&m);
	assert_ptr_equal(vio_mem_translate(&m, GA, 1), host_a);
	assert_ptr_equal(vio_mem_translate(&m, GA + 100, 200), host_a + 100);
	assert_ptr_equal(vio_mem_translate(&m, GA, sizeof(host_a)), host_a);
	assert_ptr_equal(vio_mem_translate(&m, GB + 7, 9), host_b + 7);
	/* the last byte of a region */
	assert_ptr_equal(vio_mem_translate(&m, GA + sizeof(host_a) - 1, 1),
			 host_a + sizeof(host_a) - 1);
	assert_ptr_equal(vio_mem_translate(&m, GB + sizeof(host_b) - 1, 1),
			 host_b + sizeof(host_b) - 1);
}

static void test_translate_outside(void **state)
{
	struct vio_mem m;

	two_adjacent(&m);
	assert_null(vio_mem_translate(&m, GA - 1, 1));
	assert_null(vio_mem_translate(&m, GA - 1, 2)); /* starts before */
	assert_null(vio_mem_translate(&m, GB + sizeof(host_b), 1));
	assert_null(vio_mem_translate(&m, 0, 1));
	assert_null(vio_mem_translate(&m, GC, 16));
}

static void test_translate_straddling_end(void **state)
{
	struct vio_mem m;
	struct vio_mem_region c = { GC, sizeof(host_c), host_c };

	vio_mem_init(&m);
	assert_int_equal(vio_mem_add(&m, &c), 0);
	assert_null(vio_mem_translate(&m, GC + sizeof(host_c) - 8, 16));
	assert_null(vio_mem_translate(&m, GC + sizeof(host_c) - 1, 2));
	assert_null(vio_mem_translate(&m, GC, sizeof(host_c) + 1));
}

/* Adjacent in guest space, not in host space: no single pointer covers both. */
static void test_translate_straddling_two_regions(void **state)
{
	struct vio_mem m;

	two_adjacent(&m);
	assert_null(vio_mem_translate(&m, GB - 8, 16));
	assert_null(vio_mem_translate(&m, GB - 1, 2));
	assert_null(vio_mem_translate(&m, GA, sizeof(host_a) + 1));
}

static void test_translate_len_zero(void **state)
{
	struct vio_mem m;

	two_adjacent(&m);
	assert_null(vio_mem_translate(&m, GA, 0));
	assert_null(vio_mem_translate(&m, GA + 10, 0));
}

static void test_translate_overflow(void **state)
{
	struct vio_mem m;

	two_adjacent(&m);
	assert_null(vio_mem_translate(&m, GA + 16, UINT64_MAX));
	assert_null(vio_mem_translate(&m, GA + 16, UINT64_MAX - 15));
	assert_null(vio_mem_translate(&m, UINT64_MAX - 8, 16));
	assert_null(vio_mem_translate(&m, UINT64_MAX, UINT64_MAX));
	assert_null(vio_mem_translate(&m, GA, 1ull << 63));
}

static void test_remove(void **state)
{
	struct vio_mem m;

	two_adjacent(&m);
	assert_int_equal(vio_mem_remove(&m, GA, sizeof(host_a) - 1), -ENOENT); /* size must match */
	assert_int_equal(vio_mem_remove(&m, GA + 1, sizeof(host_a)), -ENOENT);
	assert_int_equal(vio_mem_remove(&m, GC, 4096), -ENOENT);
	assert_int_equal(vio_mem_remove(&m, GA, sizeof(host_a)), 0);
	assert_int_equal(m.nregions, 1);
	assert_null(vio_mem_translate(&m, GA, 1));
	assert_ptr_equal(vio_mem_translate(&m, GB, 1), host_b); /* the other one stays */
	assert_int_equal(vio_mem_remove(&m, GA, sizeof(host_a)), -ENOENT);
	assert_int_equal(vio_mem_remove(&m, GB, sizeof(host_b)), 0);
	assert_int_equal(m.nregions, 0);
	assert_null(vio_mem_translate(&m, GB, 1));
}

static void test_host_to_gpa(void **state)
{
	struct vio_mem m;
	uint64_t gpa = 0;

	two_adjacent(&m);
	assert_int_equal(vio_mem_host_to_gpa(&m, host_a, 1, &gpa), 0);
	assert_true(gpa == GA);
	assert_int_equal(vio_mem_host_to_gpa(&m, host_b + 10, 20, &gpa), 0);
	assert_true(gpa == GB + 10);
	assert_int_equal(vio_mem_host_to_gpa(&m, host_b + sizeof(host_b) - 1, 1, &gpa), 0);
	assert_true(gpa == GB + sizeof(host_b) - 1);
	assert_int_equal(vio_mem_host_to_gpa(&m, host_b + sizeof(host_b) - 1, 2, &gpa), -EFAULT);
	assert_int_equal(vio_mem_host_to_gpa(&m, host_c, 1, &gpa), -EFAULT);
	assert_int_equal(vio_mem_host_to_gpa(&m, host_a, 0, &gpa), -EFAULT);
	assert_int_equal(vio_mem_host_to_gpa(&m, host_a + 8, UINT64_MAX, &gpa), -EFAULT);
	/* and back again */
	assert_int_equal(vio_mem_host_to_gpa(&m, host_a + 123, 4, &gpa), 0);
	assert_ptr_equal(vio_mem_translate(&m, gpa, 4), host_a + 123);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_rejects_zero_size),
		cmocka_unit_test(test_add_rejects_wrap),
		cmocka_unit_test(test_add_rejects_overlap),
		cmocka_unit_test(test_add_full_map),
		cmocka_unit_test(test_translate_inside),
		cmocka_unit_test(test_translate_outside),
		cmocka_unit_test(test_translate_straddling_end),
		cmocka_unit_test(test_translate_straddling_two_regions),
		cmocka_unit_test(test_translate_len_zero),
		cmocka_unit_test(test_translate_overflow),
		cmocka_unit_test(test_remove),
		cmocka_unit_test(test_host_to_gpa),
	};

	return cmocka_run_group_tests_name("mem", tests, NULL, NULL);
}
