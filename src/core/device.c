/* SPDX-License-Identifier: MIT */
/*
 * Feature negotiation, the device status state machine and config space
 * (virtio spec 2.1, 2.2, 2.5, 3.1.1). Knows nothing of queues or transports;
 * refuses any status write that the spec's initialization order forbids.
 */
#include <errno.h>
#include <string.h>

#include "vio/device.h"

void vio_device_init(struct vio_device *d, uint64_t offered, void *config, uint32_t config_len)
{
	memset(d, 0, sizeof(*d));
	d->offered = offered;
	d->config = config;
	d->config_len = config_len;
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

static bool config_range_ok(const struct vio_device *d, uint32_t off, uint32_t len)
{
	return off <= d->config_len && len <= d->config_len - off;
}

int vio_device_config_read(const struct vio_device *d, uint32_t off, void *buf, uint32_t len)
{
	if (!config_range_ok(d, off, len))
		return -EINVAL;
	if (len)
		memcpy(buf, d->config + off, len);
	return 0;
}

int vio_device_config_write(struct vio_device *d, uint32_t off, const void *buf, uint32_t len)
{
	if (!config_range_ok(d, off, len))
		return -EINVAL;
	if (len)
		memcpy(d->config + off, buf, len);
	return 0;
}

void vio_device_config_changed(struct vio_device *d)
{
	d->generation++;
}
