#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/).

Each seed is a short, valid session in its target's input format (see the
comment at the top of each fuzz_*.c and of fuzz_vq.c), chosen so that the
fuzzer starts from the deep states: rings with well-formed chains of every
shape, blk requests of every type, a vhost-user set-up that gets a queue
running and a request served. Run it from anywhere; it rewrites the seeds
it owns (gen-*) and leaves other files (e.g. minimised finds) alone:

    python3 tests/fuzz/gen_seeds.py
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def u8(v): return struct.pack('<B', v & 0xff)
def u16(v): return struct.pack('<H', v & 0xffff)
def u32(v): return struct.pack('<I', v & 0xffffffff)
def u64(v): return struct.pack('<Q', v & 0xffffffffffffffff)


def write(target, name, data):
    d = os.path.join(HERE, 'corpus', target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, 'gen-' + name), 'wb') as f:
        f.write(data)


# ---------------------------------------------------------------- walkers
INDIRECT, EVENT_IDX, IN_ORDER = 1, 2, 4
NEXT, WRITE, IND = 1, 2, 4


def addr_data(off, length):
    """fzq_addr kind 6: a 16-aligned buffer in the data area, 16-bit length."""
    return u8(6) + u16(off) + u16(length)


def pop(n, policy=0):
    return u8(4) + u8(n - 1) + u8(policy)


def notify(op, a=0, b=0):
    return u8(6) + u8(op) + (u16(a) + u16(b) if op == 4 else b'')


def split_chain(head, n, nout, indirect=False, lens=None):
    cfg = (n - 1) | (0x80 if indirect else 0)
    out = u8(3) + u8(cfg) + u8(head) + u8(nout)
    for i in range(n):
        out += addr_data(0x100 * (head * 16 + i), (lens or [64] * n)[i]) + u8(0) + u8(0)
    return out


def split_seeds():
    t = 'split_walker'
    hdr = lambda f, size_log2, cap: u8(f) + u8(size_log2) + u8(cap - 1)
    # direct chains of 1..4 descriptors, popped in one burst, pushed back in order
    s = hdr(0, 3, 16)
    for h, n in ((0, 1), (1, 2), (3, 3), (6, 2)):
        s += split_chain(h, n, n // 2)
    write(t, 'direct', s + pop(8) + pop(8))
    # indirect tables, pushed reversed, event index notifications
    s = hdr(INDIRECT | EVENT_IDX, 4, 32)
    s += split_chain(0, 5, 2, True) + split_chain(1, 12, 4, True)
    s += notify(4, 0, 1) + pop(4, 1) + notify(0) + notify(2) + notify(3)
    write(t, 'indirect-event', s)
    # in order: a run of one-descriptor chains, zero-length used (batched push)
    s = hdr(IN_ORDER, 3, 4)
    for h in range(6):
        s += split_chain(h, 1, 0)
    write(t, 'in-order', s + pop(6, 1 << 3) + pop(2))
    # iovecs cut short: chain of 8 into room for 3, then held and flushed
    s = hdr(INDIRECT, 4, 3)
    s += split_chain(0, 8, 3) + split_chain(8, 9, 1, True)
    write(t, 'cut-short', s + pop(2, 2) + pop(1, 4))
    # a loop in the ring: desc 0 -> 1 -> 0
    s = hdr(0, 3, 16)
    for i, nx in ((0, 1), (1, 0)):
        s += u8(0) + addr_data(0x40 * i, 32) + u8(NEXT) + u8(nx) + u8(i)
    s += u8(2) + u16(0)
    write(t, 'loop', s + pop(1) + pop(1) + notify(2))
    # moved position and a remap that loses region B
    s = hdr(EVENT_IDX, 5, 8) + u8(7) + u8(1) + u8(4) + u16(5) + u16(0)
    s += u8(7) + u8(3) + u16(5) + split_chain(5, 2, 1) + pop(2)
    s += u8(7) + u8(0) + u8(1) + split_chain(9, 1, 0) + pop(1)
    write(t, 'set-pos-remap', s)


def packed_chain(n, nout, id_, indirect=False):
    cfg = (n - 1) | (0x80 if indirect else 0)
    out = u8(2) + u8(cfg) + u8(nout) + u8(id_)
    for i in range(n):
        out += addr_data(0x100 * (id_ * 16 + i), 48) + u8(0) + u8(0)
    return out


def packed_seeds():
    t = 'packed_walker'
    hdr = lambda f, size_minus1, cap: u8(f) + u8(size_minus1) + u8(cap - 1)
    s = hdr(0, 7, 16)
    for i, n in enumerate((1, 2, 3, 1)):
        s += packed_chain(n, n // 2, i)
    write(t, 'direct', s + pop(8) + pop(8))
    # a ring of 5 (not a power of two) wrapped twice
    s = hdr(0, 4, 8)
    for lap in range(3):
        for i in range(4):
            s += packed_chain(1, 0, i)
        s += pop(4)
    write(t, 'wrap', s)
    s = hdr(INDIRECT | EVENT_IDX, 15, 32)
    s += packed_chain(6, 2, 0, True) + packed_chain(3, 1, 1, True)
    s += notify(4, 0x8002, 2) + pop(4, 1) + notify(0) + notify(2) + notify(1)
    write(t, 'indirect-event', s)
    s = hdr(IN_ORDER, 7, 4)
    for i in range(3):
        s += packed_chain(2, 1, i)
    s += pop(3, 1 << 3)
    for i in range(3):
        s += packed_chain(1, 0, i)
    write(t, 'in-order', s + pop(3, 1 << 3) + pop(2))
    # a slot whose AVAIL/USED bits say "both", then a moved position
    s = hdr(0, 7, 16) + packed_chain(1, 0, 0) + u8(7) + u8(3) + u8(1) + u16(0x8080)
    s += pop(2) + u8(7) + u8(1) + u8(4 | 1) + u16(3) + u16(3) + packed_chain(1, 0, 1) + pop(1)
    write(t, 'bad-flags-set-pos', s)
    s = hdr(INDIRECT, 7, 3) + packed_chain(9, 3, 0, True) + packed_chain(7, 2, 1)
    write(t, 'cut-short', s + pop(2, 2) + pop(1, 4))


# ---------------------------------------------------------------- blk requests
T_IN, T_OUT, T_FLUSH, T_GET_ID, T_DISCARD, T_WZ = 0, 1, 2, 3, 4, 5  # indices into types[]


def blk_req(sel, sector, nsec=1, kout=0, kin=0, shape=0, segs=(), idlen=20, out_cuts=(), in_cuts=(),
            extra=b''):
    s = u8(0) + u8(kout) + u8(kin) + u8(sel) + u8(shape) + u8(0) + u8(sector) + u8(nsec)
    if sel == T_GET_ID:
        s += u8(idlen)
    if sel in (T_DISCARD, T_WZ):
        s += u8(len(segs))
        for sec, num, fl in segs:
            s += u8(0) + u8(sec) + u8(0) + u8(num) + u8(fl)
    s += extra  # the bytes shape bits 1, 2 and 4 ask for
    for c in out_cuts:
        s += u8(c)
    for c in in_cuts:
        s += u8(c)
    return s


def blk_seeds():
    t = 'blk_request'
    DRAIN = u8(3)
    DWZ = 0x10 | 0x20  # discard and write-zeroes negotiated
    for fl, name in ((DWZ, 'split'), (1 | DWZ, 'packed'), (2 | 4 | DWZ, 'split-indirect-event'),
                     (1 | 2, 'packed-indirect-no-dwz')):
        s = u8(fl) + u8(1)
        s += blk_req(T_OUT, 3, 2, kout=1, out_cuts=(16,)) + blk_req(T_IN, 3, 2, kin=2, in_cuts=(200, 255))
        s += DRAIN + blk_req(T_FLUSH, 0) + blk_req(T_GET_ID, 0, idlen=25)
        s += blk_req(T_WZ, 0, segs=((3, 1, 0), (10, 4, 1))) + blk_req(T_DISCARD, 0, segs=((20, 8, 0),))
        s += blk_req(T_IN, 0, 8) + DRAIN
        write(t, name, s)
    # read-only: writes refused
    s = u8(8) + u8(2) + blk_req(T_OUT, 1, 1) + blk_req(T_WZ, 0, segs=((1, 1, 0),)) + blk_req(T_IN, 1, 1)
    write(t, 'readonly', s)
    # beyond the disk, a header cut short, no status byte, segments past what the device takes
    s = u8(2) + u8(3)
    s += blk_req(T_IN, 127, 2) + blk_req(T_OUT, 130, 1)
    s += blk_req(T_IN, 0, 1, shape=8, extra=u8(4)) + blk_req(T_IN, 0, 1, shape=4)
    s += blk_req(T_IN, 0, 8, kin=0x80 | 30) + DRAIN
    write(t, 'misshaped', s)


# ---------------------------------------------------------------- vhost-user
IDS = list(range(1, 26)) + [31, 32] + list(range(34, 41))
GUEST_UADDR = 0x7f0000000000
NEED_REPLY = 1
POOL_MEM_A, POOL_MEM_B, POOL_SMALL, POOL_EVT1, POOL_EVT2, POOL_PIPE, POOL_SOCKET = range(7)


def msg(req, payload=b'', fds=(), need_reply=False):
    s = u8(3) + u8(IDS.index(req)) + u8(NEED_REPLY if need_reply else 0)
    s += u8(len(payload)) if len(payload) < 0xf8 else u8(0xf8) + u16(len(payload))
    fds = list(fds)
    s += u8(len(fds) | ((fds[0] if fds else 0) << 4))
    s += payload
    for f in fds[1:]:
        s += u8(f)
    return s


CONFIG_CHANGED = u8(2) + u8(1)


def guest(off, data, which=0):
    out = b''
    while data:
        chunk, data = data[:255], data[255:]
        out += u8(0) + u8(which) + u16(off) + u8(len(chunk)) + chunk
        off += len(chunk)
    return out


POLL = u8(1)
F_INDIRECT, F_EVENT_IDX, F_PROTOCOL, F_VERSION_1, F_PACKED = 28, 29, 30, 32, 34
F_ACCESS_PLATFORM = 33
PROTO = (1 << 0) | (1 << 3) | (1 << 9) | (1 << 13) | (1 << 15) | (1 << 16)


def region(gpa, size, uaddr, off=0):
    return u64(gpa) + u64(size) + u64(uaddr) + u64(off)


def vring_addr(q, desc, used, avail):
    return u32(q) + u32(0) + u64(desc) + u64(used) + u64(avail) + u64(0)


def blk_in_request_split(qsize):
    """A split ring at gpa 0 (desc, avail at 16*qsize, used at 512-aligned) with one read."""
    d = b''
    for addr, ln, fl, nx in ((0x1000, 16, NEXT, 1), (0x2000, 512, WRITE | NEXT, 2), (0x3000, 1, WRITE, 0)):
        d += u64(addr) + u32(ln) + u16(fl) + u16(nx)
    avail = u16(0) + u16(1) + u16(0)
    hdr = u32(0) + u32(0) + u64(2)
    return guest(0, d) + guest(16 * qsize, avail) + guest(0x1000, hdr)


def blk_in_request_packed():
    A = 1 << 7
    d = b''
    for addr, ln, fl in ((0x1000, 16, NEXT | A), (0x2000, 512, WRITE | NEXT | A), (0x3000, 1, WRITE | A)):
        d += u64(addr) + u32(ln) + u16(0) + u16(fl)
    hdr = u32(0) + u32(0) + u64(2)
    return guest(0, d) + guest(0x1000, hdr)


def vhu_setup(features, mem_msg, packed=False, qsize=16, proto=True, extra=b'', proto_bits=PROTO):
    s = msg(1) + msg(2, u64(features))
    if proto:
        s += msg(15) + msg(16, u64(proto_bits)) + msg(17) + msg(36)
    s += extra + mem_msg
    s += msg(8, u32(0) + u32(qsize), need_reply=proto)
    if packed:
        s += msg(9, vring_addr(0, GUEST_UADDR, GUEST_UADDR + 16 * qsize + 4, GUEST_UADDR + 16 * qsize))
        s += msg(10, u32(0) + u32(0x80008000))
    else:
        s += msg(9, vring_addr(0, GUEST_UADDR, GUEST_UADDR + 512, GUEST_UADDR + 16 * qsize))
        s += msg(10, u32(0) + u32(0))
    s += msg(12, u64(0), fds=(POOL_EVT1,)) + msg(13, u64(0), fds=(POOL_EVT2,))
    if proto:
        s += msg(18, u32(0) + u32(1)) + msg(39, u64(0xf))
    return s


def vhu_seeds():
    t = 'vhu_backend'
    table1 = msg(5, u32(1) + u32(0) + region(0, 65536, GUEST_UADDR), fds=(POOL_MEM_A,))
    base = (1 << F_VERSION_1) | (1 << F_PROTOCOL)
    s = vhu_setup(base | (1 << F_EVENT_IDX), table1) + blk_in_request_split(16) + POLL
    s += msg(11, u32(0) + u32(0)) + msg(24, u32(0) + u32(60) + u32(0) + bytes(60))
    write(t, 'split-session', s)
    s = vhu_setup(base | (1 << F_PACKED) | (1 << F_INDIRECT), table1, packed=True)
    s += blk_in_request_packed() + POLL + msg(34) + POLL
    write(t, 'packed-session', s)
    # memory by slots: two regions added, one removed again, the ring moved
    add_a = msg(37, u64(0) + region(0, 65536, GUEST_UADDR), fds=(POOL_MEM_A,), need_reply=True)
    s = vhu_setup(base, add_a)
    s += msg(37, u64(0) + region(0x100000, 65536, GUEST_UADDR + 0x100000), fds=(POOL_MEM_B,))
    s += blk_in_request_split(16) + POLL
    s += msg(38, u64(0) + region(0, 65536, GUEST_UADDR)) + POLL
    s += msg(39, u64(0)) + msg(40)
    write(t, 'mem-slots', s)
    # no protocol features: rings start enabled; then a table of two regions
    two = msg(5, u32(2) + u32(0) + region(0, 65536, GUEST_UADDR) +
              region(0x10000, 4096, GUEST_UADDR + 0x10000), fds=(POOL_MEM_A, POOL_SMALL))
    s = vhu_setup(1 << F_VERSION_1, two, proto=False) + blk_in_request_split(16) + POLL
    s += msg(8, u32(1) + u32(8)) + msg(12, u64(1 | 0x100)) + msg(11, u32(1) + u32(0))
    write(t, 'no-protocol', s)
    # refusals: fds that cannot be mapped, a config write, an unsupported request
    s = msg(1) + msg(2, u64(base)) + msg(16, u64(PROTO))
    s += msg(5, u32(1) + u32(0) + region(0, 65536, GUEST_UADDR), fds=(POOL_PIPE,), need_reply=True)
    s += msg(25, u32(0) + u32(2) + u32(0) + u16(7), need_reply=True) + msg(19, u64(0), need_reply=True)
    s += msg(13, u64(5), fds=(POOL_EVT1,)) + msg(14, u64(0x100)) + msg(3) + msg(4)
    write(t, 'refusals', s)
    # the backend request channel and an inflight region (in the small memfd), then a restart
    inflight = lambda size: u64(size) + u64(0) + u16(2) + u16(16) + u32(0)
    chan = msg(21, fds=(POOL_SOCKET,)) + msg(31, inflight(0)) + \
        msg(32, inflight(2 * 320), fds=(POOL_SMALL,), need_reply=True)  # 2 split queues of 16
    proto = PROTO | (1 << 5) | (1 << 12)
    s = vhu_setup(base | (1 << F_EVENT_IDX), table1, extra=chan, proto_bits=proto)
    s += blk_in_request_split(16) + POLL + CONFIG_CHANGED + msg(11, u32(0) + u32(0))
    s += msg(12, u64(0), fds=(POOL_EVT1,)) + POLL + guest(0, b'\xff' * 64, which=2) + msg(34)
    write(t, 'inflight-channel', s)
    # behind an IOMMU: ring addresses and descriptors are IOVAs the updates map (after the
    # memory table, which empties the IOTLB); a request, an invalidation, a miss, an update
    iotlb = lambda typ, iova, size, uaddr, perm: u64(iova) + u64(size) + u64(uaddr) + \
        u8(perm) + u8(typ) + bytes(6)
    maps = msg(22, iotlb(2, GUEST_UADDR, 65536, GUEST_UADDR, 3)) + \
        msg(22, iotlb(2, 0, 65536, GUEST_UADDR, 3))
    s = vhu_setup(base | (1 << F_EVENT_IDX) | (1 << F_ACCESS_PLATFORM), table1,
                  extra=msg(21, fds=(POOL_SOCKET,)), proto_bits=PROTO | (1 << 5)) + maps
    s += blk_in_request_split(16) + POLL + msg(22, iotlb(3, 0, 0x2000, 0, 0)) + POLL
    s += msg(22, iotlb(2, 0x1000, 0x1000, GUEST_UADDR + 0x1000, 1)) + POLL
    s += msg(22, iotlb(2, 0, 0, GUEST_UADDR, 3)) + msg(22, iotlb(3, 0, 0, 0, 0)) + POLL
    write(t, 'iotlb', s)


# ---------------------------------------------------------------- net
def net_tx(sel, length=0, hdr=bytes(12), pieces=0, extra=b''):
    """Op 0: sel (bits 0-1 destination, 2 IPv6, 3 headers from input, 6 runt, 7 long length)."""
    s = u8(0) + u8(sel) + u8(pieces)
    s += u16(length) if sel & 0x80 else u8(length)
    return s + hdr + extra


def net_rx(shape=0, length=1600, pieces=0):
    return u8(1) + u8(shape) + u8(pieces) + u16(length - 1)


def net_ctrl(cls, cmd, data=b'', shape=0):
    return u8(2) + u8(cls) + u8(cmd) + u8(len(data)) + u8(shape) + data


NET_POLL = u8(3)


def net_seeds():
    t = 'net'
    csum = bytes([1, 0, 0, 0, 0, 0]) + u16(34) + u16(16) + u16(0)       # NEEDS_CSUM at TCP
    tso4 = bytes([1, 1]) + u16(54) + u16(100) + u16(34) + u16(16) + u16(0)
    iptcp = bytes([0x45, 0, 0, 0, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]) + \
        u16(1) + u16(2) + u32(0) + u32(0) + bytes([0x50, 0x10]) + u16(0) + u16(0) + u16(0) + bytes(8)
    for cfg, name in ((0x00, 'split'), (0x01, 'packed'), (0x1e | 0x60, 'split-all'),
                      (0x1f | 0x60, 'packed-all')):
        s = u8(cfg)
        s += net_rx() + net_rx(pieces=2) + net_rx(length=64) + net_rx(shape=1) + net_rx(shape=2)
        s += net_tx(0, 100) + net_tx(1, 60, pieces=3) + NET_POLL
        s += net_tx(0x88, 1400, hdr=csum, extra=iptcp) + net_tx(0x88, 4000, hdr=tso4, extra=iptcp)
        s += net_tx(0x40, 0) + net_tx(2, 80) + NET_POLL
        s += net_ctrl(0, 0, b'\x01') + net_ctrl(1, 1, bytes(6)) + net_ctrl(4, 0, u16(1))
        s += net_ctrl(1, 0, u32(1) + bytes(6) + u32(0)) + net_ctrl(7, 7, shape=0x40) + NET_POLL
        s += net_rx(length=9100 % 2048, pieces=3) + net_tx(0x80, 9000) + NET_POLL
        write(t, name, s)


if __name__ == '__main__':
    split_seeds()
    packed_seeds()
    blk_seeds()
    vhu_seeds()
    net_seeds()
