/* SPDX-License-Identifier: MIT */
/*
 * Device state common to every virtio device, whatever the transport:
 * feature negotiation and the device status state machine (spec 2.1, 3.1).
 * Transports feed driver actions in; device types read the negotiated
 * features out. Config space is not here: the device type owns it (its
 * vdev ops), so it has one owner.
 *
 * Not thread-safe: the control path owns it. The data path reads only
 * vio_device_features(), which does not change while DRIVER_OK is set.
 */
#ifndef VIO_CORE_DEVICE_H
#define VIO_CORE_DEVICE_H

#include <stdbool.h>
#include <stdint.h>

#include "vio/virtio_spec.h"

struct vio_device {
	uint64_t offered;   /* what the device offers */
	uint64_t accepted;  /* what the driver wrote (may include garbage until FEATURES_OK) */
	uint8_t status;
};

void vio_device_init(struct vio_device *d, uint64_t offered);

/* Driver writes status. -EINVAL (status unchanged) for a transition the spec forbids. */
int vio_device_set_status(struct vio_device *d, uint8_t status);
uint8_t vio_device_get_status(const struct vio_device *d);

/* Driver writes the features it accepts; only while DRIVER is set and FEATURES_OK is not. */
int vio_device_set_features(struct vio_device *d, uint64_t accepted);

/* Negotiated features: the accepted set once FEATURES_OK latched, else 0. */
uint64_t vio_device_features(const struct vio_device *d);
bool vio_device_has(const struct vio_device *d, unsigned bit);

/* Status 0: forget negotiation and start over. */
void vio_device_reset(struct vio_device *d);

/* The driver broke a rule: set DEVICE_NEEDS_RESET (sticky until reset). */
void vio_device_set_needs_reset(struct vio_device *d);

#endif
