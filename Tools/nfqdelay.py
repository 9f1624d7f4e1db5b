#!/usr/bin/env python3
"""Delays packets by a fixed time per netfilter queue: the kernel here has no netem, so a
test delays a link with iptables' NFQUEUE target and this, a raw nfnetlink_queue client (no
library: the protocol is a bind, a copy mode and one verdict per packet).

    nfqdelay.py 1=10 2=40 3=80   # queue 1 delayed 10 ms, queue 2 40 ms, queue 3 80 ms

Each queue's packets are released in order after its delay. The delays can be changed while
running by writing lines "QUEUE=MS" to the file named by --control (read every 50 ms). Stops
by itself after --seconds (default 600) or on SIGTERM.
"""
import argparse
import heapq
import os
import select
import signal
import socket
import struct
import time

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT, NFQNL_MSG_CONFIG = 0, 1, 2
NFQA_CFG_CMD, NFQA_CFG_PARAMS = 1, 2
NFQNL_CFG_CMD_BIND = 1
NFQNL_COPY_META = 1
NFQA_PACKET_HDR, NFQA_VERDICT_HDR = 1, 2
NF_ACCEPT = 1
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLMSG_ERROR = 2


def attr(kind, payload):
    a = struct.pack("=HH", 4 + len(payload), kind) + payload
    return a + b"\0" * (-len(a) % 4)


def message(msg, queue, attrs, flags=NLM_F_REQUEST):
    body = struct.pack("=BBH", socket.AF_UNSPEC, 0, socket.htons(queue)) + b"".join(attrs)
    return struct.pack("=IHHII", 16 + len(body), NFNL_SUBSYS_QUEUE << 8 | msg, flags, 0, 0) + body


def attributes(data):
    out, i = {}, 0
    while i + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, i)
        if length < 4:
            break
        out[kind & 0x7FFF] = data[i + 4:i + length]
        i += (length + 3) & ~3
    return out


def bind(sock, queue):
    sock.send(message(NFQNL_MSG_CONFIG, queue, [attr(NFQA_CFG_CMD, struct.pack("=BBH", NFQNL_CFG_CMD_BIND, 0, 0))], NLM_F_REQUEST | NLM_F_ACK))
    check_ack(sock, queue)
    sock.send(message(NFQNL_MSG_CONFIG, queue, [attr(NFQA_CFG_PARAMS, struct.pack(">IB", 0, NFQNL_COPY_META))], NLM_F_REQUEST | NLM_F_ACK))
    check_ack(sock, queue)


def check_ack(sock, queue):
    data = sock.recv(65536)
    _, kind, _, _, _ = struct.unpack_from("=IHHII", data)
    if kind == NLMSG_ERROR:
        (error,) = struct.unpack_from("=i", data, 16)
        if error != 0:
            raise OSError(-error, f"binding queue {queue}: {os.strerror(-error)}")


def packets(data):
    """(queue, packet id) of every packet message in one receive."""
    i = 0
    while i + 16 <= len(data):
        length, kind, _, _, _ = struct.unpack_from("=IHHII", data, i)
        if length < 16:
            break
        if kind == NFNL_SUBSYS_QUEUE << 8 | NFQNL_MSG_PACKET:
            (queue,) = struct.unpack_from(">H", data, i + 18)
            hdr = attributes(data[i + 20:i + length]).get(NFQA_PACKET_HDR)
            if hdr:
                yield queue, struct.unpack_from(">I", hdr)[0]
        i += (length + 3) & ~3


def main():
    p = argparse.ArgumentParser()
    p.add_argument("delays", nargs="+", help="QUEUE=MS")
    p.add_argument("--control", help="a file of QUEUE=MS lines, reread every 50 ms")
    p.add_argument("--seconds", type=float, default=600)
    args = p.parse_args()
    delays = {int(q): float(ms) / 1000 for q, ms in (d.split("=") for d in args.delays)}
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    for q in delays:
        bind(sock, q)
    print("ready", flush=True)
    stop = time.monotonic() + args.seconds
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    due, seq, control_mtime, next_control = [], 0, None, 0.0
    while (now := time.monotonic()) < stop:
        if args.control and now >= next_control:
            next_control = now + 0.05
            try:
                m = os.stat(args.control).st_mtime_ns
                if m != control_mtime:
                    control_mtime = m
                    for line in open(args.control).read().split():
                        q, ms = line.split("=")
                        delays[int(q)] = float(ms) / 1000
            except (OSError, ValueError):
                pass
        wait = max(0.0, min([due[0][0] - now] if due else [0.05]))
        if select.select([sock], [], [], min(wait, 0.05))[0]:
            data = sock.recv(65536)
            for queue, pid in packets(data):
                heapq.heappush(due, (time.monotonic() + delays.get(queue, 0), seq, queue, pid))
                seq += 1
        now = time.monotonic()
        while due and due[0][0] <= now:
            _, _, queue, pid = heapq.heappop(due)
            sock.send(message(NFQNL_MSG_VERDICT, queue, [attr(NFQA_VERDICT_HDR, struct.pack(">II", NF_ACCEPT, pid))]))


if __name__ == "__main__":
    main()
