/* SPDX-License-Identifier: MIT */
/*
 * What the files of src/net share: a frame as the switch carries it, a
 * port, a receive queue and its buffer stash, the per-port receive filter
 * and counters. Everything here belongs to the switch thread once a queue
 * is attached (see include/vio/net.h), except what is marked otherwise.
 */
#ifndef VIO_NET_INTERNAL_H
#define VIO_NET_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vio/net.h"

#define NET_HDR_LEN 12u
#define NET_ETH_HLEN 14u
#define NET_TX_BURST 32u
#define NET_TX_IOV_CAP 64u  /* a Linux TSO frame takes up to MAX_SKB_FRAGS + 2 */
#define NET_RX_IOV_CAP 24u  /* Linux "big packets" receive chains: MAX_SKB_FRAGS + 2 */
#define NET_RX_STASH 64u    /* receive chains popped ahead; a 64 KiB frame in ~1.5 KiB buffers fits */
#define NET_RX_USED 64u
#define NET_MAX_BUFFERS 64u /* num_buffers of one frame at most */

/* Offload abilities of a receiver (what its driver negotiated) and of a sender. */
#define NET_CAP_CSUM (1u << 0)  /* receiver: GUEST_CSUM; sender: CSUM */
#define NET_CAP_TSO4 (1u << 1)  /* receiver: GUEST_TSO4; sender: HOST_TSO4 */
#define NET_CAP_TSO6 (1u << 2)  /* receiver: GUEST_TSO6; sender: HOST_TSO6 */
#define NET_CAP_MRG (1u << 3)   /* receiver: MRG_RXBUF */

/*
 * A frame on its way through the switch: the sender's validated header and
 * the frame bytes where the sender put them (guest memory, read in place,
 * never written). Lives for one burst.
 */
struct net_frame {
	struct virtio_net_hdr_v1 hdr;
	const struct iovec *iov; /* frame bytes, without the virtio header */
	unsigned niov;
	uint32_t len;
	uint8_t mac[12];         /* destination, then source: copied once */
	/* GSO frames (hdr.gso_type != NONE): header offsets checked at parse time */
	uint16_t l3_off, l4_off, hdrs_len;
	bool hashed;
	uint32_t hash;           /* flow hash for receive-queue choice, when hashed */
};

/* The per-port receive filter the control queue programs (spec 5.1.6.5.1-2). */
struct net_filter {
	bool promisc, allmulti;
	bool uni_overflow, multi_overflow;
	bool has_mac;
	uint8_t mac[6];
	unsigned nuni, nmulti;
	uint8_t uni[VIO_NET_MAC_TABLE_MAX][6];
	uint8_t multi[VIO_NET_MAC_TABLE_MAX][6];
};

/* One receive queue of a net port. */
struct net_rxq {
	struct vio_vq_ctx ctx;
	unsigned caps;      /* NET_CAP_* the driver negotiated */
	uint32_t max_frame; /* MTU negotiated: largest non-GSO frame it takes; 0: no limit */
	bool dirty;         /* used elements or pops since the last flush */
	unsigned pending;   /* frames the switch still has for this queue in this burst: pop as many */
	bool logged;
	/* chains popped and not yet used, oldest first (ring of NET_RX_STASH) */
	unsigned head, count;
	struct vio_chain stash[NET_RX_STASH];
	struct iovec iov[NET_RX_STASH][NET_RX_IOV_CAP];
	unsigned nused;
	struct vio_used_elem used[NET_RX_USED];
};

/* Counters: written by the switch thread only, read by anyone. */
struct net_counters {
	_Atomic uint64_t rx_packets, rx_bytes, tx_packets, tx_bytes;
	_Atomic uint64_t drops[VIO_NET_DROP_COUNT];
	_Atomic uint64_t tx_throttled;
};

static inline void net_count(_Atomic uint64_t *c, uint64_t v)
{
	/* One writer: a load and a store, no locked instruction. */
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
			      memory_order_relaxed);
}

static inline void net_drop(struct net_counters *c, enum vio_net_drop why)
{
	net_count(&c->drops[why], 1);
}

/* Internal results: 0 when done, NET_FAIL(reason) when dropped (net_drop_rc counts it). */
#define NET_FAIL(why) ((int)(why) + 1)

static inline void net_drop_rc(struct net_counters *c, int rc)
{
	net_drop(c, (enum vio_net_drop)(rc - 1));
}

enum net_port_kind { NET_PORT_VIRTIO, NET_PORT_TAP };

struct vio_tap;

/*
 * A switch port. The control thread fills kind/name/owner before it
 * publishes the port (in_use, release); the rest is the switch thread's.
 */
struct net_port {
	atomic_bool in_use;
	atomic_bool link_up;
	enum net_port_kind kind;
	char name[64];
	void *owner;               /* struct vio_net or struct vio_tap */
	unsigned id;
	/* switch thread */
	struct net_rxq *rxq[VIO_NET_MAX_PAIRS]; /* attached receive queues, by pair */
	unsigned max_pairs;
	unsigned curr_pairs;       /* pairs the driver uses (control queue MQ) */
	struct net_rxq *active[VIO_NET_MAX_PAIRS]; /* attached queues among curr_pairs */
	unsigned nactive;
	bool tap_ready;            /* a tap's pseudo-queue is attached */
	unsigned rx_caps;          /* NET_CAP_* of its receive side */
	_Atomic uint32_t gen;      /* bumped when the port goes: entries learned before are stale */
	uint8_t last_src[6];       /* learning shortcut: last source seen at last_src_time */
	uint32_t last_src_time;
	struct net_filter filter;
	struct net_counters ctr;
};

/* ---- switch.c ---- */

struct vio_switch;

/* Add a port (control thread): its slot, or NULL when the switch is full. */
struct net_port *net_switch_port_add(struct vio_switch *sw, enum net_port_kind kind,
				     const char *name, void *owner);
/* Its queues are all detached: forget it (control thread). */
void net_switch_port_del(struct vio_switch *sw, struct net_port *p);

/* Forward n frames the port p sent (switch thread). Each frame was validated. */
void net_switch_forward(struct vio_switch *sw, struct net_port *p, struct net_frame *f,
			unsigned n);

/* The port's receive queue set changed (attach, detach, pairs): recompute active[]. */
void net_port_rx_changed(struct vio_switch *sw, struct net_port *p);

/* ---- tap.c ---- */

/* Write one frame into the tap (switch thread); a refusal is counted on ctr. */
void net_tap_put(struct vio_tap *t, struct net_counters *ctr, const struct net_frame *f);

/* ---- net_tx.c: turning a sender's buffer into a frame ---- */

/*
 * Validate the virtio header hdr (copied out) and frame bytes iov[0, niov)
 * of len bytes from a sender with NET_CAP_* caps, and fill f. 0, or
 * NET_FAIL(reason).
 */
int net_frame_parse(struct net_frame *f, const struct virtio_net_hdr_v1 *hdr,
		    const struct iovec *iov, unsigned niov, uint32_t len, unsigned caps);

/* Flow hash of a frame (symmetric in source and destination). */
uint32_t net_frame_hash(struct net_frame *f);

/* ---- iovec helpers (net_iov.c) ---- */

/* Copy len bytes from offset off of the list into dst; false if the list is too short. */
bool net_iov_read(const struct iovec *iov, unsigned n, size_t off, void *dst, size_t len);

/* The iovecs covering [off, off + len) of the list, into out (cap entries): count, 0 if they do not fit. */
unsigned net_iov_slice(const struct iovec *iov, unsigned n, size_t off, size_t len,
		       struct iovec *out, unsigned cap);

/* ---- net_rx.c: receive queues ---- */

/* Ready rq for the queue in ctx with negotiated features (before attach). */
void net_rxq_init(struct net_rxq *rq, const struct vio_vq_ctx *ctx, uint64_t features,
		  uint16_t mtu);

/*
 * Copy one frame, preceded by the virtio header hdr (num_buffers is set
 * here), into rq's buffers: the frame bytes come from iov[0, niov) (len
 * bytes); if patch_off < len, the two bytes at patch_off are written as
 * patch (big-endian: a checksum the switch completed). 0, or
 * NET_FAIL(reason) (counted by the caller). Used buffers are published by net_rxq_flush.
 */
int net_rxq_put(struct net_rxq *rq, struct net_counters *ctr, const struct virtio_net_hdr_v1 *hdr,
		const struct iovec *iov, unsigned niov, uint32_t len, uint32_t patch_off,
		uint16_t patch);

/* Publish the used buffers once and notify the driver if it wants. */
void net_rxq_flush(struct net_rxq *rq);

/* Return every stashed chain (written length 0): the queue is being stopped. */
void net_rxq_drain(struct net_rxq *rq);

/* ---- net_offload.c: what a receiver did not negotiate, done in software ---- */

/*
 * Deliver f into the port through put(), completing its checksum or
 * segmenting it as the receiver's caps require. put() returns 0 or
 * NET_FAIL(reason); the first failure ends the frame and is returned.
 */
typedef int net_put_fn(void *opaque, const struct virtio_net_hdr_v1 *hdr, const struct iovec *iov,
		       unsigned niov, uint32_t len, uint32_t patch_off, uint16_t patch);
int net_offload_deliver(const struct net_frame *f, unsigned rx_caps, net_put_fn *put,
			void *opaque, unsigned *delivered);

/* The Internet checksum (RFC 1071) of len bytes at offset off of the list, folded, not inverted. */
uint16_t net_csum_iov(const struct iovec *iov, unsigned n, size_t off, size_t len, uint32_t seed);

/* ---- net_ctrl.c: the control queue ---- */

/* Reset the port's receive filter and queue-pair count to the spec's defaults. */
void net_ctrl_reset(struct net_port *p, const uint8_t *mac);

/*
 * Execute one control command (class, command, data) against the port.
 * Returns VIRTIO_NET_OK or VIRTIO_NET_ERR. negotiated: the port's features.
 */
uint8_t net_ctrl_exec(struct vio_switch *sw, struct net_port *p, uint64_t negotiated,
		      const struct iovec *out, unsigned nout, uint32_t out_bytes,
		      uint8_t new_mac[6], bool *mac_changed);

/* Does the port's filter accept a frame for this destination? */
bool net_filter_accept(const struct net_filter *f, const uint8_t dst[6]);

#endif
