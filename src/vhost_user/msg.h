/* SPDX-License-Identifier: MIT */
/*
 * The vhost-user wire format (qemu docs/interop/vhost-user.rst) and the one
 * codec both roles use. VIO_VHU_REQUESTS lists every front-end request once:
 * its payload size rule, the fds it takes and its reply; msg.c validates
 * against it and backend.c generates its dispatch table from it.
 */
#ifndef VIO_VHU_MSG_H
#define VIO_VHU_MSG_H

#include <stdbool.h>
#include <stdint.h>

/* Header flags. */
#define VHOST_USER_VERSION_MASK 0x3u
#define VHOST_USER_VERSION 0x1u
#define VHOST_USER_REPLY_MASK (1u << 2)
#define VHOST_USER_NEED_REPLY_MASK (1u << 3)

#define VHOST_USER_HDR_SIZE 12u
#define VHOST_USER_MAX_FDS 8u
#define VHOST_MEMORY_BASELINE_NREGIONS 8u
#define VHOST_USER_MAX_CONFIG_SIZE 256u

/* SET_VRING_KICK/CALL/ERR u64 payload. */
#define VHOST_USER_VRING_IDX_MASK 0xffu
#define VHOST_USER_VRING_NOFD_MASK (1u << 8)

/* Feature bit 26: log every guest page the device writes (live migration). */
#define VHOST_F_LOG_ALL 26
/* SET_VRING_ADDR flags bit: log used-ring writes at log_guest_addr. */
#define VHOST_VRING_F_LOG 0
/* Dirty bitmap granule: one bit per page of this size. */
#define VHOST_LOG_PAGE 4096u

/* Virtio feature bit 30, reused by vhost-user to gate protocol features. */
#define VHOST_USER_F_PROTOCOL_FEATURES 30

#define VHOST_USER_PROTOCOL_F_MQ 0
#define VHOST_USER_PROTOCOL_F_LOG_SHMFD 1
#define VHOST_USER_PROTOCOL_F_RARP 2
#define VHOST_USER_PROTOCOL_F_REPLY_ACK 3
#define VHOST_USER_PROTOCOL_F_MTU 4
#define VHOST_USER_PROTOCOL_F_BACKEND_REQ 5 /* SLAVE_REQ in older QEMU */
#define VHOST_USER_PROTOCOL_F_CROSS_ENDIAN 6
#define VHOST_USER_PROTOCOL_F_CRYPTO_SESSION 7
#define VHOST_USER_PROTOCOL_F_PAGEFAULT 8
#define VHOST_USER_PROTOCOL_F_CONFIG 9
#define VHOST_USER_PROTOCOL_F_BACKEND_SEND_FD 10 /* SLAVE_SEND_FD */
#define VHOST_USER_PROTOCOL_F_HOST_NOTIFIER 11
#define VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD 12
#define VHOST_USER_PROTOCOL_F_RESET_DEVICE 13
#define VHOST_USER_PROTOCOL_F_INBAND_NOTIFICATIONS 14
#define VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS 15
#define VHOST_USER_PROTOCOL_F_STATUS 16

/* The protocol features vio speaks, in both roles (the backend offers them, the frontend asks). */
#define VHU_PROTOCOL_FEATURES                                                                   \
	((1ull << VHOST_USER_PROTOCOL_F_MQ) | (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK) |          \
	 (1ull << VHOST_USER_PROTOCOL_F_CONFIG) | (1ull << VHOST_USER_PROTOCOL_F_STATUS) |         \
	 (1ull << VHOST_USER_PROTOCOL_F_RESET_DEVICE) |                                          \
	 (1ull << VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS) |                                   \
	 (1ull << VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD) |                                        \
	 (1ull << VHOST_USER_PROTOCOL_F_LOG_SHMFD))

/* What only the backend role offers: the backend request channel (backend_channel.c). */
#define VHU_BACKEND_PROTOCOL_FEATURES \
	(VHU_PROTOCOL_FEATURES | (1ull << VHOST_USER_PROTOCOL_F_BACKEND_REQ))

/* Requests the backend sends on the backend request channel (vhost-user.rst). */
enum vio_vhu_backend_request {
	VHOST_USER_BACKEND_IOTLB_MSG = 1,
	VHOST_USER_BACKEND_CONFIG_CHANGE_MSG = 2,
	VHOST_USER_BACKEND_VRING_HOST_NOTIFIER_MSG = 3,
};

/* IOTLB_MSG (front-end) and BACKEND_IOTLB_MSG (backend) payload: struct vhost_iotlb_msg. */
struct vio_vhu_iotlb_msg {
	uint64_t iova;
	uint64_t size;
	uint64_t uaddr;
	uint8_t perm; /* VIO_IOTLB_RO 1, WO 2, RW 3 */
	uint8_t type;
	uint8_t padding[6];
};
#define VHOST_IOTLB_MISS 1
#define VHOST_IOTLB_UPDATE 2
#define VHOST_IOTLB_INVALIDATE 3
#define VHOST_IOTLB_ACCESS_FAIL 4

/* Payload layouts (native byte order, no implicit padding). */
struct vio_vhu_vring_state {
	uint32_t index;
	uint32_t num;
};

struct vio_vhu_vring_addr {
	uint32_t index;
	uint32_t flags;
	uint64_t desc_user_addr;
	uint64_t used_user_addr;
	uint64_t avail_user_addr;
	uint64_t log_guest_addr;
};

struct vio_vhu_mem_region {
	uint64_t guest_phys_addr;
	uint64_t memory_size;
	uint64_t userspace_addr;
	uint64_t mmap_offset;
};

struct vio_vhu_memory {
	uint32_t nregions;
	uint32_t padding;
	struct vio_vhu_mem_region regions[VHOST_MEMORY_BASELINE_NREGIONS];
};

struct vio_vhu_mem_single {
	uint64_t padding;
	struct vio_vhu_mem_region region;
};

#define VIO_VHU_CONFIG_HDR_SIZE 12u
struct vio_vhu_config {
	uint32_t offset;
	uint32_t size;
	uint32_t flags;
	uint8_t region[VHOST_USER_MAX_CONFIG_SIZE];
};

/* GET/SET_INFLIGHT_FD: the spec lists 20 bytes of fields; front-ends send the padded C struct. */
/* SET_LOG_BASE with LOG_SHMFD: where the bitmap lies in the fd it carries. */
struct vio_vhu_log {
	uint64_t mmap_size;
	uint64_t mmap_offset;
};

struct vio_vhu_inflight {
	uint64_t mmap_size;
	uint64_t mmap_offset;
	uint16_t num_queues;
	uint16_t queue_size;
	uint32_t padding;
};

#define VIO_VHU_MEM_HDR_SIZE 8u
#define VIO_VHU_MAX_PAYLOAD sizeof(struct vio_vhu_memory)

/* Payload size rules: SZ(min, max) in bytes. */
#define VHU_SZ_NONE 0, 0
#define VHU_SZ_U64 8, 8
#define VHU_SZ_STATE 8, 8
#define VHU_SZ_ADDR 40, 40
#define VHU_SZ_MEM VIO_VHU_MEM_HDR_SIZE, sizeof(struct vio_vhu_memory)
#define VHU_SZ_MEM1 40, 40
#define VHU_SZ_CONFIG VIO_VHU_CONFIG_HDR_SIZE, sizeof(struct vio_vhu_config)
#define VHU_SZ_INFLIGHT 24, 24
#define VHU_SZ_LOG 16, 16
#define VHU_SZ_ANY 0, VIO_VHU_MAX_PAYLOAD
#define VHU_SZ_IOTLB 26, 32 /* the fields, or the padded C struct front-ends send */

/* Reply kinds: what a request always answers (ACK: only when NEED_REPLY is set). */
enum vio_vhu_reply {
	VIO_VHU_REPLY_ACK,    /* nothing, or a u64 status with REPLY_ACK's need_reply */
	VIO_VHU_REPLY_U64,
	VIO_VHU_REPLY_STATE,
	VIO_VHU_REPLY_CONFIG,
	VIO_VHU_REPLY_INFLIGHT, /* an inflight description and (unless its size is 0) one fd */
	VIO_VHU_REPLY_LOG,    /* SET_LOG_BASE: always answered, payload ignored (vio sends none) */
};

/*
 * X(name, id, payload size min, max, fds min, max, reply, backend handler).
 * Handler "unsupported" marks requests vio knows but does not implement:
 * the codec checks them like any other (their fds are only ever closed) and
 * the backend refuses them.
 */
#define VIO_VHU_REQUESTS(X)                                                                     \
	X(GET_FEATURES, 1, VHU_SZ_NONE, 0, 0, VIO_VHU_REPLY_U64, get_features)                     \
	X(SET_FEATURES, 2, VHU_SZ_U64, 0, 0, VIO_VHU_REPLY_ACK, set_features)                      \
	X(SET_OWNER, 3, VHU_SZ_NONE, 0, 0, VIO_VHU_REPLY_ACK, set_owner)                           \
	X(RESET_OWNER, 4, VHU_SZ_NONE, 0, 0, VIO_VHU_REPLY_ACK, reset_owner)                       \
	X(SET_MEM_TABLE, 5, VHU_SZ_MEM, 0, VHOST_MEMORY_BASELINE_NREGIONS, VIO_VHU_REPLY_ACK,   \
	  set_mem_table)                                                                        \
	X(SET_LOG_BASE, 6, VHU_SZ_LOG, 1, 1, VIO_VHU_REPLY_LOG, set_log_base)                     \
	X(SET_LOG_FD, 7, VHU_SZ_NONE, 1, 1, VIO_VHU_REPLY_ACK, set_log_fd)                         \
	X(SET_VRING_NUM, 8, VHU_SZ_STATE, 0, 0, VIO_VHU_REPLY_ACK, set_vring_num)                  \
	X(SET_VRING_ADDR, 9, VHU_SZ_ADDR, 0, 0, VIO_VHU_REPLY_ACK, set_vring_addr)                 \
	X(SET_VRING_BASE, 10, VHU_SZ_STATE, 0, 0, VIO_VHU_REPLY_ACK, set_vring_base)               \
	X(GET_VRING_BASE, 11, VHU_SZ_STATE, 0, 0, VIO_VHU_REPLY_STATE, get_vring_base)             \
	X(SET_VRING_KICK, 12, VHU_SZ_U64, 0, 1, VIO_VHU_REPLY_ACK, set_vring_fd)                 \
	X(SET_VRING_CALL, 13, VHU_SZ_U64, 0, 1, VIO_VHU_REPLY_ACK, set_vring_fd)                 \
	X(SET_VRING_ERR, 14, VHU_SZ_U64, 0, 1, VIO_VHU_REPLY_ACK, set_vring_fd)                   \
	X(GET_PROTOCOL_FEATURES, 15, VHU_SZ_NONE, 0, 0, VIO_VHU_REPLY_U64, get_protocol_features)  \
	X(SET_PROTOCOL_FEATURES, 16, VHU_SZ_U64, 0, 0, VIO_VHU_REPLY_ACK, set_protocol_features)   \
	X(GET_QUEUE_NUM, 17, VHU_SZ_NONE, 0, 0, VIO_VHU_REPLY_U64, get_queue_num)                  \
	X(SET_VRING_ENABLE, 18, VHU_SZ_STATE, 0, 0, VIO_VHU_REPLY_ACK, set_vring_enable)           \
	X(SEND_RARP, 19, VHU_SZ_U64, 0, 0, VIO_VHU_REPLY_ACK, unsupported)                         \
	X(NET_SET_MTU, 20, VHU_SZ_U64, 0, 0, VIO_VHU_REPLY_ACK, unsupported)                       \
	X(SET_BACKEND_REQ_FD, 21, VHU_SZ_NONE, 1, 1, VIO_VHU_REPLY_ACK, set_backend_req_fd)       \
	X(IOTLB_MSG, 22, VHU_SZ_IOTLB, 0, 0, VIO_VHU_REPLY_U64, iotlb_msg)                         \
	X(SET_VRING_ENDIAN, 23, VHU_SZ_STATE, 0, 0, VIO_VHU_REPLY_ACK, unsupported)                \
	X(GET_CONFIG, 24, VHU_SZ_CONFIG, 0, 0, VIO_VHU_REPLY_CONFIG, get_config)                   \
	X(SET_CONFIG, 25, VHU_SZ_CONFIG, 0, 0, VIO_VHU_REPLY_ACK, set_config)                      \
	X(GET_INFLIGHT_FD, 31, VHU_SZ_INFLIGHT, 0, 0, VIO_VHU_REPLY_INFLIGHT, get_inflight_fd)     \
	X(SET_INFLIGHT_FD, 32, VHU_SZ_INFLIGHT, 1, 1, VIO_VHU_REPLY_ACK, set_inflight_fd)          \
	X(RESET_DEVICE, 34, VHU_SZ_NONE, 0, 0, VIO_VHU_REPLY_ACK, reset_device)                    \
	X(VRING_KICK, 35, VHU_SZ_STATE, 0, 0, VIO_VHU_REPLY_ACK, unsupported)                      \
	X(GET_MAX_MEM_SLOTS, 36, VHU_SZ_NONE, 0, 0, VIO_VHU_REPLY_U64, get_max_mem_slots)          \
	X(ADD_MEM_REG, 37, VHU_SZ_MEM1, 1, 1, VIO_VHU_REPLY_ACK, add_mem_reg)                      \
	X(REM_MEM_REG, 38, VHU_SZ_MEM1, 0, 1, VIO_VHU_REPLY_ACK, rem_mem_reg)                      \
	X(SET_STATUS, 39, VHU_SZ_U64, 0, 0, VIO_VHU_REPLY_ACK, set_status)                         \
	X(GET_STATUS, 40, VHU_SZ_NONE, 0, 0, VIO_VHU_REPLY_U64, get_status)

enum vio_vhu_request {
#define VIO_VHU_ENUM(name, id, ...) VHOST_USER_##name = id,
	VIO_VHU_REQUESTS(VIO_VHU_ENUM)
#undef VIO_VHU_ENUM
	VHOST_USER_MAX_REQUEST = 64, /* ids at or above this are never valid */
};

/* What the table says about one request. */
struct vio_vhu_req_info {
	const char *name;
	uint32_t min_size, max_size;
	uint8_t min_fds, max_fds;
	enum vio_vhu_reply reply;
	bool known;
};

struct vio_vhu_msg {
	uint32_t request;
	uint32_t flags;
	uint32_t size;
	union {
		uint64_t u64;
		struct vio_vhu_vring_state state;
		struct vio_vhu_vring_addr addr;
		struct vio_vhu_memory memory;
		struct vio_vhu_mem_single mem1;
		struct vio_vhu_config config;
		struct vio_vhu_inflight inflight;
		struct vio_vhu_log log;
		uint8_t raw[VIO_VHU_MAX_PAYLOAD];
	} p;
	int fds[VHOST_USER_MAX_FDS];
	unsigned nfds;
};

_Static_assert(sizeof(struct vio_vhu_vring_addr) == 40, "vring addr layout");
_Static_assert(sizeof(struct vio_vhu_mem_single) == 40, "single region layout");
_Static_assert(sizeof(struct vio_vhu_memory) == 8 + 8 * 32, "memory table layout");
_Static_assert(sizeof(struct vio_vhu_config) == 12 + 256, "config layout");
_Static_assert(sizeof(struct vio_vhu_inflight) == 24, "inflight description layout");
_Static_assert(sizeof(struct vio_vhu_iotlb_msg) == 32, "IOTLB message layout");

/* Table entry for a request id; NULL for ids vio does not know. */
const struct vio_vhu_req_info *vio_vhu_req_info(uint32_t request);
const char *vio_vhu_req_name(uint32_t request);

/*
 * Receive one front-end request from fd (blocking; a SO_RCVTIMEO on fd
 * bounds a peer stalling mid-message). On success the header, payload and
 * fds (close-on-exec, owned by the caller: vio_vhu_msg_close_fds) are in m.
 * Rejections are logged under owner (the connection's name).
 * Returns:
 *   0        a valid known request
 *   -ENOMSG  an unknown request (header in m): payload consumed, fds
 *            closed; answer an error if it has NEED_REPLY, else ignore it
 *   -EPROTO  malformed (version, size rule, fd count, REPLY bit): fds
 *            closed; the stream may be out of step, drop the connection
 *   -ECONNRESET the peer closed (cleanly before a header, or mid-message)
 *   other negative errno from the socket
 */
int vio_vhu_msg_recv(int fd, struct vio_vhu_msg *m, const char *owner);

/*
 * Receive the reply to `request` (front-end side): REPLY bit set, same
 * request, size right for its reply kind (or a u64 ack when ack is true),
 * no fds (an inflight reply: at most one, owned by the caller). Same error
 * codes as vio_vhu_msg_recv.
 */
int vio_vhu_msg_recv_reply(int fd, uint32_t request, bool ack, struct vio_vhu_msg *m,
			   const char *owner);

/* Send m (header, size bytes of payload, nfds fds); version bits are set here. */
int vio_vhu_msg_send(int fd, struct vio_vhu_msg *m);

/* Send a reply carrying a u64 (ack: 0 success, non-zero failure) for request. */
int vio_vhu_msg_reply_u64(int fd, uint32_t request, uint64_t v);

void vio_vhu_msg_close_fds(struct vio_vhu_msg *m);

/* ---- pieces the blocking and the incremental receivers share (msg.c) ---- */

/* Unknown requests are read and dropped; a size past this is not vhost-user at all. */
#define VHU_DISCARD_MAX (64u * 1024)

struct msghdr;
/* Take the fds of every SCM_RIGHTS block into m; -EPROTO if any had to be dropped. */
int vio_vhu_collect_fds(struct msghdr *mh, struct vio_vhu_msg *m);
/* After the header: 0 go on, 1 an unknown oversized request to read away, -EPROTO. */
int vio_vhu_check_header(const struct vio_vhu_msg *m, const char *owner);
/* After the payload: 0, -ENOMSG (unknown) or -EPROTO; fds closed unless 0. */
int vio_vhu_validate_request(struct vio_vhu_msg *m, const char *owner);

/* ---- incremental receive on a non-blocking socket (msg_rx.c) ---- */

/*
 * One request being assembled from whatever the socket has: the backend
 * never waits inside a message, so a peer that trickles bytes delays
 * nobody; the owner bounds how long a message may stay incomplete.
 */
struct vio_vhu_rx {
	struct vio_vhu_msg m;  /* header, payload and fds so far */
	uint8_t hdr[VHOST_USER_HDR_SIZE];
	uint32_t got;          /* bytes of the current message read (header + payload) */
	uint32_t discard_left; /* unknown oversized payload still to read away */
	bool bad_fds;
};

void vio_vhu_rx_init(struct vio_vhu_rx *rx);
/* Forget a partial message (its fds are closed). */
void vio_vhu_rx_reset(struct vio_vhu_rx *rx);
/* True while a message has begun but not ended. */
bool vio_vhu_rx_partial(const struct vio_vhu_rx *rx);
/*
 * Read what fd holds of the current message, never blocking. Returns
 * -EAGAIN (need more bytes), or what vio_vhu_msg_recv returns for a whole
 * message (0 with it in *m, -ENOMSG, -EPROTO, -ECONNRESET, -errno).
 */
int vio_vhu_rx_step(int fd, struct vio_vhu_rx *rx, struct vio_vhu_msg *m, const char *owner);

/* Receive exactly len bytes (EINTR and short reads handled). */
int vio_vhu_recv_all(int fd, void *buf, size_t len);

#endif
