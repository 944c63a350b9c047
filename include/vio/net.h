/* SPDX-License-Identifier: MIT */
/**
 * @file net.h
 * virtio-net (virtio 1.2, 5.1): the spec's constants and wire structures,
 * and vio's network side: a built-in learning switch whose ports are
 * virtio-net devices (struct vio_net, a struct vio_vdev served by any
 * transport) and tap devices (struct vio_tap).
 *
 * Threads. Everything a switch does with frames runs on one thread at a
 * time, the switch thread: the queue_poll, queue_attach and queue_detach
 * ops of every port's vdev (net devices and taps) of one switch. A TX poll
 * of one port copies frames straight into other ports' receive buffers, so
 * all queues of one switch belong to that one thread (like an OVS-DPDK PMD
 * thread); no lock is taken on that path. The control thread creates and
 * frees ports, starts and stops queues through the vdev ops, and reads
 * counters at any time.
 */
#ifndef VIO_NET_H
#define VIO_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vio/export.h"
#include "vio/vdev.h"

#define VIRTIO_ID_NET 1

/* Feature bits (spec 5.1.3). */
#define VIRTIO_NET_F_CSUM 0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_CTRL_GUEST_OFFLOADS 2
#define VIRTIO_NET_F_MTU 3
#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_GUEST_TSO4 7
#define VIRTIO_NET_F_GUEST_TSO6 8
#define VIRTIO_NET_F_GUEST_ECN 9
#define VIRTIO_NET_F_GUEST_UFO 10
#define VIRTIO_NET_F_HOST_TSO4 11
#define VIRTIO_NET_F_HOST_TSO6 12
#define VIRTIO_NET_F_HOST_ECN 13
#define VIRTIO_NET_F_HOST_UFO 14
#define VIRTIO_NET_F_MRG_RXBUF 15
#define VIRTIO_NET_F_STATUS 16
#define VIRTIO_NET_F_CTRL_VQ 17
#define VIRTIO_NET_F_CTRL_RX 18
#define VIRTIO_NET_F_CTRL_VLAN 19
#define VIRTIO_NET_F_CTRL_RX_EXTRA 20
#define VIRTIO_NET_F_GUEST_ANNOUNCE 21
#define VIRTIO_NET_F_MQ 22
#define VIRTIO_NET_F_CTRL_MAC_ADDR 23

/* Config status bits. */
#define VIRTIO_NET_S_LINK_UP 1
#define VIRTIO_NET_S_ANNOUNCE 2

/* Config space up to the fields vio serves (spec 5.1.4), little-endian. */
struct virtio_net_config {
	uint8_t mac[6];
	uint16_t status;
	uint16_t max_virtqueue_pairs;
	uint16_t mtu;
};

/* struct virtio_net_hdr with VERSION_1: always 12 bytes, num_buffers included. */
#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1
#define VIRTIO_NET_HDR_F_DATA_VALID 2
#define VIRTIO_NET_HDR_F_RSC_INFO 4

#define VIRTIO_NET_HDR_GSO_NONE 0
#define VIRTIO_NET_HDR_GSO_TCPV4 1
#define VIRTIO_NET_HDR_GSO_UDP 3
#define VIRTIO_NET_HDR_GSO_TCPV6 4
#define VIRTIO_NET_HDR_GSO_UDP_L4 5
#define VIRTIO_NET_HDR_GSO_ECN 0x80

struct virtio_net_hdr_v1 {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers;
};

/* Control virtqueue (spec 5.1.6.5): class, command, data (readable), ack (writable). */
#define VIRTIO_NET_OK 0
#define VIRTIO_NET_ERR 1

#define VIRTIO_NET_CTRL_RX 0
#define VIRTIO_NET_CTRL_RX_PROMISC 0
#define VIRTIO_NET_CTRL_RX_ALLMULTI 1
#define VIRTIO_NET_CTRL_RX_ALLUNI 2
#define VIRTIO_NET_CTRL_RX_NOMULTI 3
#define VIRTIO_NET_CTRL_RX_NOUNI 4
#define VIRTIO_NET_CTRL_RX_NOBCAST 5

#define VIRTIO_NET_CTRL_MAC 1
#define VIRTIO_NET_CTRL_MAC_TABLE_SET 0
#define VIRTIO_NET_CTRL_MAC_ADDR_SET 1

#define VIRTIO_NET_CTRL_VLAN 2
#define VIRTIO_NET_CTRL_ANNOUNCE 3

#define VIRTIO_NET_CTRL_MQ 4
#define VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET 0
#define VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MIN 1
#define VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MAX 0x8000

#define VIRTIO_NET_CTRL_GUEST_OFFLOADS 5

_Static_assert(sizeof(struct virtio_net_hdr_v1) == 12, "spec layout");
_Static_assert(sizeof(struct virtio_net_config) == 12, "spec layout");

/* ---- vio's switch and its ports ---- */

/* Queue pairs one vio net device serves at most (vhost-user carries 8-bit queue indices). */
#define VIO_NET_MAX_PAIRS 16
/* Ports one switch holds at once (a deleted port's slot is reused). */
#define VIO_SWITCH_MAX_PORTS 1024
/* Unicast and multicast entries the control queue's MAC table keeps per port; beyond: all pass. */
#define VIO_NET_MAC_TABLE_MAX 64
/* Largest frame (without the virtio header) the switch carries: a 64 KiB GSO frame. */
#define VIO_NET_MAX_FRAME 65550

/* Why a frame was dropped; counted on the port named in each comment. */
enum vio_net_drop {
	VIO_NET_DROP_TX_BAD_HEADER,  /* sender: chain shorter than the 12-byte header, or not readable */
	VIO_NET_DROP_TX_RUNT,        /* sender: frame shorter than an Ethernet header */
	VIO_NET_DROP_TX_OVERSIZE,    /* sender: frame over VIO_NET_MAX_FRAME or too many segments */
	VIO_NET_DROP_TX_BAD_OFFLOAD, /* sender: checksum / GSO fields not negotiated or inconsistent */
	VIO_NET_DROP_TX_NO_DEST,     /* sender: no other port to deliver to */
	VIO_NET_DROP_RX_NO_BUFFER,   /* receiver: its receive queue was empty (tap: write refused) */
	VIO_NET_DROP_RX_TOO_BIG,     /* receiver: frame larger than its buffers or its MTU */
	VIO_NET_DROP_RX_BAD_CHAIN,   /* receiver: a receive chain with no writable part / no room for the header */
	VIO_NET_DROP_RX_FILTERED,    /* receiver: refused by its RX mode and MAC table */
	VIO_NET_DROP_RX_NO_QUEUE,    /* receiver: learned there, but it has no running receive queue */
	VIO_NET_DROP_LINK_DOWN,      /* either: the port's link is down */
	VIO_NET_DROP_CTRL_BAD,       /* the port's control queue: malformed or refused command */
	VIO_NET_DROP_COUNT
};

struct vio_net_port_stats {
	uint64_t rx_packets, rx_bytes; /* delivered to the port's driver */
	uint64_t tx_packets, tx_bytes; /* taken from it and switched */
	uint64_t drops[VIO_NET_DROP_COUNT];
	uint64_t tx_throttled;         /* times its frames began waiting for its rate limits */
};

VIO_API const char *vio_net_drop_str(enum vio_net_drop why);

struct vio_switch_opts {
	unsigned aging_s; /* a learned address is forgotten after this many idle seconds (0: 300) */
};

struct vio_switch;

VIO_API int vio_switch_new(const struct vio_switch_opts *o, struct vio_switch **out);

/** Every port must have been freed. NULL is fine. */
VIO_API void vio_switch_free(struct vio_switch *sw);

/** Slots handed out (a port's index is its id); a freed slot reads as unused until a new port takes it. */
VIO_API unsigned vio_switch_nports(const struct vio_switch *sw);

/**
 * Counters of port id, from any thread (each value is read atomically; the
 * set is not a snapshot). -ENOENT for an unused slot. name may be NULL.
 */
VIO_API int vio_switch_port_stats(const struct vio_switch *sw, unsigned port,
			  struct vio_net_port_stats *st, char *name, size_t name_len);

/* ---- virtio-net devices ---- */

struct vio_net_opts {
	struct vio_switch *sw; /* the switch this device becomes a port of */
	const char *name;      /* for log lines and counters */
	unsigned queue_pairs;  /* 1..VIO_NET_MAX_PAIRS (0 means 1) */
	const uint8_t *mac;    /* 6 bytes: offer VIRTIO_NET_F_MAC with it; NULL: the driver picks */
	uint16_t mtu;          /* offered with VIRTIO_NET_F_MTU, 68..65535 (0: 1500) */
};

struct vio_net;

/**
 * A virtio-net device with queue_pairs RX/TX pairs and a control queue,
 * added to o->sw as a new port. Control thread. 0, -EINVAL, -ENOSPC (the
 * switch is full), -ENOMEM.
 */
VIO_API int vio_net_new(const struct vio_net_opts *o, struct vio_net **out);

/** The device as transports and pollers see it; valid until vio_net_free. */
VIO_API struct vio_vdev vio_net_vdev(struct vio_net *net);

/** Its port id in the switch. */
VIO_API unsigned vio_net_port(const struct vio_net *net);

/**
 * Link state reported in the config status and obeyed by the switch (a
 * down port neither sends nor receives). Up at creation. Any thread.
 */
VIO_API void vio_net_set_link(struct vio_net *net, bool up);

/**
 * Rate limits of what the port sends into the switch (0: none): frames and
 * bits (frame bytes times 8, no virtio header) per second, token buckets
 * whose bursts default to a tenth of a second's worth. Frames beyond them
 * wait in the sender's TX ring (it sees a full queue, as behind a slow
 * link); nothing is dropped. Other ports are not affected.
 */
struct vio_net_qos {
	uint64_t pps, pps_burst;
	uint64_t bps, bps_burst; /**< bits per second */
};

/** Set the rate limits. Control thread; queues may run. 0. */
VIO_API int vio_net_set_qos(struct vio_net *net, const struct vio_net_qos *qos);
VIO_API void vio_net_get_qos(const struct vio_net *net, struct vio_net_qos *qos);

/** Leave the switch and free. Every queue must have been stopped. NULL is fine. */
VIO_API void vio_net_free(struct vio_net *net);

/* ---- tap devices ---- */

struct vio_tap;

/**
 * Open (or create) the tap interface ifname with a virtio-net header and
 * checksum/TSO offloads, and add it to sw as a port. Its vdev has one
 * pseudo-queue (0) with no virtqueue: queue_poll reads frames from the tap
 * into the switch, queue_wait_fd is the tap's fd (readable when frames
 * wait: a poller must wait on it, never read it). The interface's admin
 * state is left to the caller (ip link set up). Control thread.
 */
VIO_API int vio_tap_new(struct vio_switch *sw, const char *ifname, struct vio_tap **out);
VIO_API struct vio_vdev vio_tap_vdev(struct vio_tap *t);
VIO_API unsigned vio_tap_port(const struct vio_tap *t);
/** The pseudo-queue must be detached (not polled). NULL is fine. */
VIO_API void vio_tap_free(struct vio_tap *t);

#endif
