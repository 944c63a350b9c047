/* SPDX-License-Identifier: MIT */
/**
 * @file virtio_spec.h
 * Constants and ring layouts from the virtio 1.2 specification, with the
 * spec's own names. Nothing here holds state or logic beyond the one-line
 * event-index test the spec defines. All ring fields are little-endian; vio
 * supports little-endian hosts only (x86_64, aarch64), checked below.
 */
#ifndef VIO_VIRTIO_SPEC_H
#define VIO_VIRTIO_SPEC_H

#include <stdbool.h>
#include <stdint.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "vio assumes a little-endian host (virtio 1.x rings are little-endian)"
#endif

/** A feature bit as a mask: VIO_BIT(VIRTIO_F_VERSION_1). */
#define VIO_BIT(n) (1ull << (n))

/** Device status (spec 2.1). */
#define VIRTIO_CONFIG_S_ACKNOWLEDGE 1
#define VIRTIO_CONFIG_S_DRIVER 2
#define VIRTIO_CONFIG_S_DRIVER_OK 4
#define VIRTIO_CONFIG_S_FEATURES_OK 8
#define VIRTIO_CONFIG_S_NEEDS_RESET 64
#define VIRTIO_CONFIG_S_FAILED 128

/** Reserved feature bits (spec 6). */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32
#define VIRTIO_F_ACCESS_PLATFORM 33
#define VIRTIO_F_RING_PACKED 34
#define VIRTIO_F_IN_ORDER 35
#define VIRTIO_F_ORDER_PLATFORM 36
#define VIRTIO_F_SR_IOV 37
#define VIRTIO_F_NOTIFICATION_DATA 38

/** Split ring (spec 2.7). */
#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY 1

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct virtq_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[];
	/** uint16_t used_event follows ring[size] */
};

struct virtq_used_elem {
	uint32_t id;
	uint32_t len;
};

struct virtq_used {
	uint16_t flags;
	uint16_t idx;
	struct virtq_used_elem ring[];
	/** uint16_t avail_event follows ring[size] */
};

/** Packed ring (spec 2.8). */
#define VIRTQ_DESC_F_AVAIL (1u << 7)
#define VIRTQ_DESC_F_USED (1u << 15)
#define RING_EVENT_FLAGS_ENABLE 0x0
#define RING_EVENT_FLAGS_DISABLE 0x1
#define RING_EVENT_FLAGS_DESC 0x2
#define RING_EVENT_WRAP_SHIFT 15

struct pvirtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t id;
	uint16_t flags;
};

struct pvirtq_event_suppress {
	uint16_t desc; /**< off_wrap: bits 0-14 offset, bit 15 wrap counter */
	uint16_t flags;
};

/** Alignment of each area (spec 2.7 table "Virtqueue Part Alignment"). */
#define VIRTQ_DESC_ALIGN 16
#define VIRTQ_AVAIL_ALIGN 2
#define VIRTQ_USED_ALIGN 4
#define PVIRTQ_DESC_ALIGN 16
#define PVIRTQ_EVENT_ALIGN 4

static inline uint64_t virtq_avail_bytes(uint32_t size)
{
	return 6 + 2ull * size;
}

static inline uint64_t virtq_used_bytes(uint32_t size)
{
	return 6 + 8ull * size;
}

/**
 * The peer asked to be notified once its index passes event_idx: true when
 * event_idx lies in [old, new) modulo 2^16 (spec 2.7.10, "vring_need_event").
 */
static inline bool vring_need_event(uint16_t event_idx, uint16_t new_idx, uint16_t old_idx)
{
	return (uint16_t)(new_idx - event_idx - 1) < (uint16_t)(new_idx - old_idx);
}

#endif
