/* SPDX-License-Identifier: MIT */
/*
 * Device state: the status handshake in the spec's order, feature
 * negotiation (FEATURES_OK declined for unoffered bits).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/device.h"

#define ACK VIRTIO_CONFIG_S_ACKNOWLEDGE
#define DRV VIRTIO_CONFIG_S_DRIVER
#define FOK VIRTIO_CONFIG_S_FEATURES_OK
#define DOK VIRTIO_CONFIG_S_DRIVER_OK

static const uint64_t offered = VIO_BIT(VIRTIO_F_VERSION_1) | VIO_BIT(VIRTIO_F_EVENT_IDX) | VIO_BIT(3);

static void handshake_to(struct vio_device *d, uint64_t accept)
{
	assert_int_equal(vio_device_set_status(d, ACK), 0);
	assert_int_equal(vio_device_set_status(d, ACK | DRV), 0);
	assert_int_equal(vio_device_set_features(d, accept), 0);
}

static void test_full_handshake(void **state)
{
	struct vio_device d;
	uint64_t accept = VIO_BIT(VIRTIO_F_VERSION_1) | VIO_BIT(3);

	vio_device_init(&d, offered);
	handshake_to(&d, accept);
	assert_int_equal(vio_device_features(&d), 0); /* nothing negotiated before FEATURES_OK */
	assert_int_equal(vio_device_set_status(&d, ACK | DRV | FOK), 0);
	assert_int_equal(vio_device_get_status(&d), ACK | DRV | FOK);
	assert_int_equal(vio_device_set_status(&d, ACK | DRV | FOK | DOK), 0);
	assert_int_equal(vio_device_get_status(&d), ACK | DRV | FOK | DOK);
	assert_true(vio_device_features(&d) == accept);
	assert_true(vio_device_has(&d, 3));
	assert_false(vio_device_has(&d, VIRTIO_F_EVENT_IDX));
}

static void test_unoffered_bit_declines_features_ok(void **state)
{
	struct vio_device d;

	vio_device_init(&d, offered);
	handshake_to(&d, VIO_BIT(VIRTIO_F_VERSION_1) | VIO_BIT(5));
	assert_int_equal(vio_device_set_status(&d, ACK | DRV | FOK), -ENOTSUP);
	/* The driver re-reads status and must not find FEATURES_OK. */
	assert_int_equal(vio_device_get_status(&d) & FOK, 0);
	assert_int_equal(vio_device_features(&d), 0);
	assert_int_equal(vio_device_set_status(&d, ACK | DRV | FOK | DOK), -ENOTSUP);
	assert_int_equal(vio_device_get_status(&d) & (FOK | DOK), 0);
}

static void test_legacy_driver_declined(void **state)
{
	struct vio_device d;

	vio_device_init(&d, offered);
	handshake_to(&d, VIO_BIT(3)); /* no VERSION_1 */
	assert_int_equal(vio_device_set_status(&d, ACK | DRV | FOK), -ENOTSUP);
	assert_int_equal(vio_device_get_status(&d) & FOK, 0);
}

static void test_order_enforced(void **state)
{
	struct vio_device d;

	vio_device_init(&d, offered);
	assert_int_equal(vio_device_set_status(&d, DRV), -EINVAL);	/* DRIVER before ACK */
	assert_int_equal(vio_device_set_status(&d, ACK | FOK), -EINVAL); /* FEATURES_OK before DRIVER */
	assert_int_equal(vio_device_set_status(&d, ACK | DRV | DOK), -EINVAL); /* DRIVER_OK early */
	assert_int_equal(vio_device_get_status(&d), 0);
	assert_int_equal(vio_device_set_features(&d, VIO_BIT(VIRTIO_F_VERSION_1)), -EBUSY);
	handshake_to(&d, VIO_BIT(VIRTIO_F_VERSION_1));
	assert_int_equal(vio_device_set_status(&d, ACK), -EINVAL); /* clearing DRIVER */
	assert_int_equal(vio_device_set_status(&d, ACK | DRV | FOK), 0);
	/* features are frozen once FEATURES_OK is set */
	assert_int_equal(vio_device_set_features(&d, VIO_BIT(VIRTIO_F_VERSION_1) | VIO_BIT(3)), -EBUSY);
	assert_true(vio_device_features(&d) == VIO_BIT(VIRTIO_F_VERSION_1));
}

static void test_failed_and_reset(void **state)
{
	struct vio_device d;

	vio_device_init(&d, offered);
	handshake_to(&d, VIO_BIT(VIRTIO_F_VERSION_1));
	assert_int_equal(vio_device_set_status(&d, ACK | DRV | VIRTIO_CONFIG_S_FAILED), 0);
	assert_true(vio_device_get_status(&d) & VIRTIO_CONFIG_S_FAILED);
	assert_int_equal(vio_device_set_status(&d, 0), 0);
	assert_int_equal(vio_device_get_status(&d), 0);
	assert_int_equal(vio_device_features(&d), 0);
	handshake_to(&d, VIO_BIT(VIRTIO_F_VERSION_1));
	assert_int_equal(vio_device_set_status(&d, ACK | DRV | FOK), 0);
}

static void test_needs_reset_sticky(void **state)
{
	struct vio_device d;

	vio_device_init(&d, offered);
	handshake_to(&d, VIO_BIT(VIRTIO_F_VERSION_1));
	assert_int_equal(vio_device_set_status(&d, ACK | DRV | FOK | DOK), 0);
	/* only the device may set NEEDS_RESET */
	assert_int_equal(vio_device_set_status(&d, ACK | DRV | FOK | DOK | VIRTIO_CONFIG_S_NEEDS_RESET),
			 -EINVAL);
	vio_device_set_needs_reset(&d);
	assert_int_equal(vio_device_get_status(&d), ACK | DRV | FOK | DOK | VIRTIO_CONFIG_S_NEEDS_RESET);
	/* a driver write that keeps its own bits keeps the device's bit too */
	assert_int_equal(vio_device_set_status(&d, ACK | DRV | FOK | DOK | VIRTIO_CONFIG_S_FAILED), 0);
	assert_true(vio_device_get_status(&d) & VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_int_equal(vio_device_set_status(&d, 0), 0);
	assert_int_equal(vio_device_get_status(&d), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_handshake),
		cmocka_unit_test(test_unoffered_bit_declines_features_ok),
		cmocka_unit_test(test_legacy_driver_declined),
		cmocka_unit_test(test_order_enforced),
		cmocka_unit_test(test_failed_and_reset),
		cmocka_unit_test(test_needs_reset_sticky),
	};
	return cmocka_run_group_tests_name("device", tests, NULL, NULL);
}
