/* SPDX-License-Identifier: MIT */
/*
 * Feature negotiation and the device status state machine (virtio spec 2.1,
 * 2.2, 3.1.1). Knows nothing of queues, config space or transports;
 * refuses any status write that the spec's initialization order forbids.
 */
#include <errno.h>
#include <string.h>

#include "device.h"

void vio_device_init(struct vio_device *d, uint64_t offered)
{
	memset(d, 0, sizeof(*d));
	d->offered = offered;
}

void vio_device_reset(struct vio_device *d)
{
	d->status = 0;
	d->accepted = 0;
}

/* Each step of the handshake needs the one before it (spec 3.1.1). */
static bool order_ok(uint8_t s)
{
	if ((s & VIRTIO_CONFIG_S_DRIVER) && !(s & VIRTIO_CONFIG_S_ACKNOWLEDGE))
		return false;
	if ((s & VIRTIO_CONFIG_S_FEATURES_OK) && !(s & VIRTIO_CONFIG_S_DRIVER))
		return false;
	if ((s & VIRTIO_CONFIG_S_DRIVER_OK) && !(s & VIRTIO_CONFIG_S_FEATURES_OK))
		return false;
	return true;
}

int vio_device_set_status(struct vio_device *d, uint8_t status)
{
	const uint8_t device_bits = VIRTIO_CONFIG_S_NEEDS_RESET;
	uint8_t old = d->status & ~device_bits;

	if (status == 0) {
		vio_device_reset(d);
		return 0;
	}
	if (status & device_bits)
		return -EINVAL; /* only the device sets NEEDS_RESET */
	if ((status & old) != old)
		return -EINVAL; /* the driver never clears a bit but by reset */
	if (!order_ok(status))
		return -EINVAL;
	if ((status & VIRTIO_CONFIG_S_FEATURES_OK) && !(old & VIRTIO_CONFIG_S_FEATURES_OK)) {
		bool subset = (d->accepted & ~d->offered) == 0;
		bool modern = (d->accepted >> VIRTIO_F_VERSION_1) & 1;
		if (!subset || !modern) {
			/* Declined: the driver's re-read shows FEATURES_OK clear (spec 3.1.1 step 6). */
			d->status = (d->status & device_bits) | (status & ~VIRTIO_CONFIG_S_FEATURES_OK &
								  ~VIRTIO_CONFIG_S_DRIVER_OK);
			return -ENOTSUP;
		}
	}
	d->status = (d->status & device_bits) | status;
	return 0;
}

uint8_t vio_device_get_status(const struct vio_device *d)
{
	return d->status;
}

int vio_device_set_features(struct vio_device *d, uint64_t accepted)
{
	if (!(d->status & VIRTIO_CONFIG_S_DRIVER) || (d->status & VIRTIO_CONFIG_S_FEATURES_OK))
		return -EBUSY;
	d->accepted = accepted;
	return 0;
}

uint64_t vio_device_features(const struct vio_device *d)
{
	return (d->status & VIRTIO_CONFIG_S_FEATURES_OK) ? d->accepted : 0;
}

bool vio_device_has(const struct vio_device *d, unsigned bit)
{
	return (vio_device_features(d) >> bit) & 1;
}

void vio_device_set_needs_reset(struct vio_device *d)
{
	d->status |= VIRTIO_CONFIG_S_NEEDS_RESET;
}
