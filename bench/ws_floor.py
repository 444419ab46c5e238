"""Run: .venv/bin/python bench/ws_floor.py --clients 0 1 20 --mode shared   (or --mode percon)

The floor: what writing N clients x B bytes of websocket text frames over loopback costs a server process in CPU.

A plain asyncio server; clients (raw sockets, reading and discarding) in a child process. Modes:
  shared  - each frame's bytes (header + payload) built once, the same bytes object written to every transport
  percon  - each connection encodes the str and frames it itself (what uvicorn's sans-I/O protocol does)
"""

import argparse
import asyncio
import multiprocessing
import os
import resource
import socket
import statistics
import struct
import time


def header(n):
    if n < 126:
        return struct.pack("!BB", 0x81, n)
    if n < 65536:
        return struct.pack("!BBH", 0x81, 126, n)
    return struct.pack("!BBQ", 0x81, 127, n)


def clients(port, count, total, ready, done):
    import selectors

    socks = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port))
        s.setblocking(False)
        socks.append(s)
    ready.put(1)
    sel = selectors.DefaultSelector()
    left = {}
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
        left[s] = total
    cpu = time.process_time()
    while left:
        for key, _ in sel.select():
            s = key.fileobj
            try:
                data = s.recv(1 << 18)
            except BlockingIOError:
                continue
            left[s] -= len(data)
            if left[s] <= 0 or not data:
                sel.unregister(s)
                del left[s]
                s.close()
    done.put(time.process_time() - cpu)


async def serve(args, count):
    loop = asyncio.get_running_loop()
    transports = []

    class P(asyncio.Protocol):
        def connection_made(self, t):
            self.t = t
            self.w = asyncio.Event()
            self.w.set()
            transports.append(self)

        def pause_writing(self):
            self.w.clear()

        def resume_writing(self):
            self.w.set()

        def connection_lost(self, exc):
            self.w.set()

    server = await loop.create_server(P, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    ctx = multiprocessing.get_context("spawn")
    ready, done = ctx.Queue(), ctx.Queue()
    text = (
        '{"event":"invocation_complete","data":{"queue_id":"bench","item_id":1,"batch_id":"x",'
        '"session_id":"y","invocation_source_id":"add","invocation":{"id":"abc","type":"add","a":1,"b":1},'
        '"result":{"value":2,"type":"integer_output"}}}'
    )
    msg = (text + " " * max(0, args.message_bytes - len(text)))[: args.message_bytes]
    per_frame = max(1, args.frame_bytes // (len(msg) + 1))
    frames_n = args.total_bytes // ((len(msg) + 1) * per_frame)
    frame_text = "[" + ",".join([msg] * per_frame) + "]"
    size = len(header(len(frame_text))) + len(frame_text)
    total = size * frames_n
    child = ctx.Process(target=clients, args=(port, count, total, ready, done))
    if count:
        child.start()
        ready.get()
    while len(transports) < count:
        await asyncio.sleep(0.01)
    cpu = time.process_time()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(frames_n):
        ft = "".join(("[", frame_text[1:]))  # a new str object per frame, as the sink builds
        if args.mode == "shared":
            data = header(len(ft)) + ft.encode()
            for p in transports:
                if not p.w.is_set():
                    await p.w.wait()
                p.t.write(data)
        else:
            for p in transports:
                if not p.w.is_set():
                    await p.w.wait()
                payload = ft.encode()
                p.t.write(b"".join([header(len(payload)) + payload]))
        if args.pace:
            await asyncio.sleep(args.pace)
    # until every byte is out of our buffers and the clients read all
    for p in transports:
        while p.t.get_write_buffer_size():
            await asyncio.sleep(0.001)
    client_cpu = await loop.run_in_executor(None, done.get) if count else 0.0
    ru2 = resource.getrusage(resource.RUSAGE_SELF)
    out = time.process_time() - cpu
    if count:
        child.join()
    for p in transports:
        p.t.close()
    server.close()
    return out, ru2.ru_utime - ru.ru_utime, ru2.ru_stime - ru.ru_stime, client_cpu, frames_n, size


def main():
    a = argparse.ArgumentParser()
    a.add_argument("--clients", type=int, nargs="+", default=[1, 20])
    a.add_argument("--mode", default="shared")
    a.add_argument("--total-bytes", type=int, default=14_000_000)
    a.add_argument("--frame-bytes", type=int, default=70_000)
    a.add_argument("--message-bytes", type=int, default=350)
    a.add_argument("--pace", type=float, default=0.02)
    a.add_argument("--runs", type=int, default=3)
    args = a.parse_args()
    res = {}
    for r in range(args.runs):
        for c in args.clients:
            out = asyncio.run(serve(args, c))
            res.setdefault(c, []).append(out)
            print(
                f"run {r + 1} clients {c}: server cpu {out[0]:.3f} s (user {out[1]:.3f}, sys {out[2]:.3f}), "
                f"clients cpu {out[3]:.3f}, {out[4]} frames of {out[5]} B",
                flush=True,
            )
    for c in args.clients:
        cpu, user, system = (statistics.median(o[k] for o in res[c]) for k in range(3))
        print(f"clients {c}: median server CPU {cpu:.3f} s, user {user:.3f}, sys {system:.3f}")
    print("load", os.getloadavg())


if __name__ == "__main__":
    main()
