"""Live events under load: a 10,000-item iterate graph through the queue, with and without 20 websocket clients.

The server (uvicorn on 127.0.0.1, SQLite in a temp folder, core_nodes + sqlite + core_events
plugins) runs in this process; the websocket clients run in a child process (the ``websockets``
library), so their reading does not share this process's interpreter lock. Each run enqueues
``range(N) -> iterate -> add`` (2N + 1 nodes, about 4N events) with no client, one, and 20 subscribed
(interleaved, medians compared). The run time is the item's ``started_at`` to ``completed_at`` as the
server recorded them; the server's CPU (this process, less the thread that polls) is counted from the
enqueue until every client has read the last message and the server is idle again (what a run leaves to do after it
completed counts in every case alike), and the clients' CPU (their process) apart, since
both share the machine's cores. 20 clients against one is what the fan-out costs; 20 against none what clients
cost the server in all.

Each server runs in a child process of its own (this script with ``--serve``), which takes one run at a time from
this process. ``--compare-with CHECKOUT`` starts a second server from another checkout (its host, SDK and plugins
first on ``PYTHONPATH``) and interleaves the two run by run, so that load from elsewhere falls on both alike.

    .venv/bin/python bench/events.py                 # N=10,000, 20 clients, 3 runs each
    .venv/bin/python bench/events.py --batch         # clients subscribe with "batch": true
    .venv/bin/python bench/events.py --batch --node-events brief   # ... and "node_events": "brief"
    .venv/bin/python bench/events.py --batch --node-events full brief progress   # one server per form, interleaved
    .venv/bin/python bench/events.py --items 2000 --save-interval 0   # save after every node
    git worktree add /tmp/base a2a8a38 && .venv/bin/python bench/events.py --save-interval 1000 --compare-with /tmp/base
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn

# A server for another checkout (--compare-with) finds that checkout first on PYTHONPATH; this one's root comes after.
sys.path.insert(len(os.environ.get("PYTHONPATH", "").split(os.pathsep)) if os.environ.get("PYTHONPATH") else 0,
                str(Path(__file__).resolve().parents[1]))
import invoke_core_events.plugin as core_events_plugin
import invoke_core_nodes.plugin as core_nodes_plugin
import invoke_sqlite_storage.plugin as sqlite_plugin

from invoke_host.app import create_app
from invoke_host.config import HostConfig
from tests.queue.live_server import live_server

Q = "/api/v1/queue/bench"


def iterate_graph(n: int) -> dict[str, Any]:
    return {
        "nodes": {"range": {"id": "range", "type": "range", "start": 0, "stop": n, "step": 1},
                  "it": {"id": "it", "type": "iterate"},
                  "add": {"id": "add", "type": "add", "b": 1}},
        "edges": [{"source": {"node_id": "range", "field": "collection"},
                   "destination": {"node_id": "it", "field": "collection"}},
                  {"source": {"node_id": "it", "field": "item"}, "destination": {"node_id": "add", "field": "a"}}],
    }


def _clients(url: str, count: int, batch: bool, node_events: str | None, ready: Any, results: Any) -> None:
    """Child process: ``count`` subscribed clients, each reading until the item completes."""
    import websockets

    async def one() -> tuple[int, float, float, int]:
        # No keep-alive pings: on a loaded machine a busy reader must not be dropped for a late pong.
        async with websockets.connect(url, max_size=None, ping_interval=None) as ws:
            subscribe: dict[str, Any] = {"subscribe": "queue", "queue_id": "bench", "batch": batch}
            if node_events is not None:
                subscribe["node_events"] = node_events  # a checkout from before the option ignores the key
            await ws.send(json.dumps(subscribe))
            await ws.recv()
            ready.put(1)
            got, first, last, size = 0, 0.0, 0.0, 0
            async for raw in ws:
                size += len(raw)
                now = time.perf_counter()
                first = first or now
                last = now
                decoded = json.loads(raw)
                for message in decoded if batch else (decoded,):
                    got += 1
                    if message["event"] == "queue_item_status_changed" and message["data"]["status"] in (
                            "completed", "failed"):
                        return got, first, last, size
        return got, first, last, size

    async def main() -> None:
        cpu = time.process_time()
        done = await asyncio.gather(*(one() for _ in range(count)))
        total = sum(d[0] for d in done)
        span = max(d[2] for d in done) - min(d[1] for d in done)
        results.put((total, span, min(d[0] for d in done), time.process_time() - cpu, min(d[3] for d in done)))

    asyncio.run(main())


def _seconds(item: dict[str, Any]) -> float:
    start = datetime.fromisoformat(item["started_at"])
    end = datetime.fromisoformat(item["completed_at"])
    return (end - start).total_seconds()


def _settle(quiet: float = 0.004, look: float = 0.2, most: float = 30.0) -> None:
    """Wait until the server is idle again (under ``quiet`` s of its CPU in ``look`` s): what a run leaves to do after
    it completed (freeing the finished state, the last progress rows) counts in every case alike, with or without
    clients, instead of only where the clients' reading kept the window open."""
    def server_cpu() -> float:
        return time.process_time() - time.thread_time()

    deadline = time.monotonic() + most
    last = server_cpu()
    while time.monotonic() < deadline:
        time.sleep(look)
        now = server_cpu()
        if now - last < quiet:
            return
        last = now


def run_once(http: httpx.Client, base: str, n: int, clients: int, batch: bool = False,
             node_events: str | None = None) -> dict[str, Any]:
    """One item through the server with ``clients`` subscribers; the server's CPU is counted until every client
    has read the last message (deliveries go on after the item completes), the clients' in their own process."""
    ctx = multiprocessing.get_context("spawn")
    ready, results = ctx.Queue(), ctx.Queue()
    child = None
    if clients:
        child = ctx.Process(target=_clients, args=(base.replace("http", "ws") + "/ws", clients, batch, node_events,
                                                       ready, results), daemon=True)
        child.start()
        for _ in range(clients):
            ready.get(timeout=60)
    # This process is the server (uvicorn's loop, the processor's node threads) and this thread's polling:
    # the polling thread's own CPU is taken off.
    cpu, mine = time.process_time(), time.thread_time()
    r = http.post(f"{Q}/enqueue_batch", json={"batch": {"graph": iterate_graph(n)}})
    r.raise_for_status()
    [item_id] = r.json()["item_ids"]
    batch_id = r.json()["batch"]["batch_id"]
    # Poll the cheap counts, not the item (its session grows to megabytes while it runs).
    while True:
        counts = http.get(f"{Q}/b/{batch_id}/status").json()
        if counts["completed"] + counts["failed"] + counts["canceled"] == 1:
            break
        time.sleep(0.05)
    out: dict[str, Any] = {}
    if child is not None:
        total, span, least, client_cpu, text = results.get(timeout=300)
        child.join(60)
        # text: characters of the frames one client read (its JSON; bytes, as the messages are ASCII)
        out.update(delivered=total, span=span, per_client_min=least, client_cpu=client_cpu, chars_per_client=text)
    _settle()
    out["cpu"] = (time.process_time() - cpu) - (time.thread_time() - mine)
    item = http.get(f"{Q}/i/{item_id}").json()
    assert item["status"] == "completed", item.get("error_message")
    out["seconds"] = _seconds(item)
    out["nodes"] = item["results"]["count"]
    http.put(f"{Q}/prune")
    return out


_RESULT = "bench-result "
"""Prefix of the line a ``--serve`` process answers each run with (anything else it prints is passed through)."""


def _without_pings(config: Callable[..., uvicorn.Config]) -> Callable[..., uvicorn.Config]:
    def make(*args: Any, **options: Any) -> uvicorn.Config:
        return config(*args, **{"ws_ping_interval": None, **options})

    return make


def serve(args: argparse.Namespace) -> None:
    """Child process: one server; each line on stdin is a client count, each answer one JSON line on stdout."""
    # No keep-alive pings either way: on these loaded cores a client 20 s behind reads the server's ping too late,
    # and uvicorn drops it (its reset ended whole runs). Both checkouts' test server build their uvicorn.Config here.
    uvicorn.Config = _without_pings(uvicorn.Config)  # type: ignore[misc]
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        extra = {} if args.save_interval is None else {"session_save_interval": args.save_interval}
        config = HostConfig(root=Path(tmp), max_batch_size=10, ws_client_buffer=1_000_000,
                            ws_client_buffer_bytes=1 << 30, **extra)
        app = create_app(config, [("core_nodes", core_nodes_plugin), ("sqlite", sqlite_plugin),
                                  ("core_events", core_events_plugin)], entry_points=False)
        with live_server(app) as base, httpx.Client(base_url=base, timeout=120) as http:
            run_once(http, base, min(args.items, 500), 0)  # warm-up
            where = {name: str(Path(str(sys.modules[name].__file__)).parent) for name in ("invoke_host", "invoke_sdk")}
            print(_RESULT + json.dumps({"host": where["invoke_host"], "sdk": where["invoke_sdk"]}), flush=True)
            for line in sys.stdin:
                form = args.node_events[0] if args.node_events else None
                out = run_once(http, base, args.items, int(line), args.batch, form)
                print(_RESULT + json.dumps(out), flush=True)


class Side:
    """A ``--serve`` child process, for this checkout or another."""

    def __init__(self, label: str, args: argparse.Namespace, checkout: Path | None, form: str | None) -> None:
        self.label = label
        env = dict(os.environ)
        if checkout is not None:
            plugins = sorted(p for p in (checkout / "plugins").iterdir() if (p / "pyproject.toml").exists())
            env["PYTHONPATH"] = os.pathsep.join(str(p) for p in [checkout, checkout / "sdk", *plugins])
        command = [sys.executable, str(Path(__file__).resolve()), "--serve", "--items", str(args.items)]
        if args.batch:
            command.append("--batch")
        self.form = form
        if form is not None:
            command += ["--node-events", form]
        if args.save_interval is not None:
            command += ["--save-interval", str(args.save_interval)]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.runs: dict[int, list[dict[str, Any]]] = {}
        ready = self._answer()  # after its warm-up
        print(f"{label}: the host from {ready['host']}, the SDK from {ready['sdk']}", flush=True)

    def _answer(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith(_RESULT):
                answer: dict[str, Any] = json.loads(line[len(_RESULT):])
                return answer
            print(line, end="")
        raise RuntimeError(f"the {self.label} server ended (exit status {self.process.wait()})")

    def run(self, clients: int) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{clients}\n")
        self.process.stdin.flush()
        out = self._answer()
        self.runs.setdefault(clients, []).append(out)
        return out

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _give_up(signum: int, frame: Any) -> None:
    print("bench/events.py: gave up, the --timeout passed", file=sys.stderr, flush=True)
    for child in multiprocessing.active_children():
        child.kill()
    for side in _SIDES:
        side.process.kill()
    os._exit(2)


_SIDES: list[Side] = []


def _report(side: Side, args: argparse.Namespace, sizes: tuple[int, ...]) -> dict[int, dict[str, float]]:
    runs = side.runs
    nodes = 2 * args.items + 1
    med = {c: {k: statistics.median(r[k] for r in runs[c]) for k in runs[c][0]} for c in sizes}
    framing = "batched frames" if args.batch else "one message per frame"
    print(f"\n{side.label}: iterate over {args.items} items: {nodes} nodes, "
          f"{med[args.clients]['per_client_min']:.0f} messages, {med[args.clients]['chars_per_client'] / 1e6:.1f} MB "
          f"per client ({framing}{', node_events ' + side.form if side.form else ''}); "
          f"medians of {args.runs}, "
          "the server's CPU counted until the last message arrived")
    print(f"{'clients':>8} {'run s':>7} {'server CPU s':>13} {'clients CPU s':>14} {'messages/s':>11}")
    for c in sizes:
        m = med[c]
        rate = f"{statistics.median(r['delivered'] / r['span'] for r in runs[c]):11,.0f}" if c else f"{'-':>11}"
        print(f"{c:>8} {m['seconds']:7.2f} {m['cpu']:13.2f} {m.get('client_cpu', 0):14.2f} {rate}")
    one, many, none = med[1]["cpu"], med[args.clients]["cpu"], med[0]["cpu"]
    print(f"server CPU, {args.clients} clients against 1 (the fan-out): {(many / one - 1) * 100:+.1f}%")
    print(f"server CPU, 1 client against none (building and sending the events once): {(one / none - 1) * 100:+.1f}%")
    print(f"server CPU, {args.clients} clients against none: {(many / none - 1) * 100:+.1f}%")
    print(f"run time, {args.clients} clients against none: "
          f"{(med[args.clients]['seconds'] / med[0]['seconds'] - 1) * 100:+.1f}%")
    return med


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch", action="store_true", help='clients subscribe with "batch": true')
    parser.add_argument("--node-events", choices=("full", "brief", "progress"), nargs="+", default=None,
                        help='clients subscribe with "node_events": this form (default: leave the key out); with '
                        "several, one server of this checkout per form, interleaved (--compare-with gets the first)")
    parser.add_argument("--timeout", type=int, default=1800, help="give up after this many seconds")
    parser.add_argument("--save-interval", type=float, default=None, help="session_save_interval (default: config)")
    parser.add_argument("--compare-with", type=Path, metavar="CHECKOUT",
                        help="also run a server from another checkout (git worktree add DIR REV), interleaved")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args)
        return
    signal.signal(signal.SIGALRM, _give_up)
    signal.alarm(args.timeout)
    sizes = (0, 1, args.clients)
    print("load average at the start: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()), flush=True)
    try:
        forms: list[str | None] = list(args.node_events) if args.node_events else [None]
        for form in forms:
            _SIDES.append(Side("this checkout" + (f", node_events {form}" if len(forms) > 1 else ""), args, None, form))
        if args.compare_with is not None:
            _SIDES.append(Side(f"checkout {args.compare_with}", args, args.compare_with.resolve(), forms[0]))
        for i in range(args.runs):
            for c in sizes:  # interleaved, so load from elsewhere falls on every case and side alike
                for side in _SIDES:
                    side.run(c)
            for side in _SIDES:
                line = ", ".join(
                    f"{c} clients {side.runs[c][-1]['seconds']:.2f} s (server CPU {side.runs[c][-1]['cpu']:.2f} s"
                    + (f", clients' CPU {side.runs[c][-1]['client_cpu']:.2f} s" if c else "") + ")" for c in sizes)
                print(f"run {i + 1}, {side.label}: {line}", flush=True)
    finally:
        for side in _SIDES:
            side.close()
    print("load average at the end: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()), flush=True)
    medians = [_report(side, args, sizes) for side in _SIDES]
    if len(medians) == 2:
        (ours, theirs), many = medians, args.clients
        change = (ours[many]["cpu"] / theirs[many]["cpu"] - 1) * 100
        print(f"\nserver CPU with {many} clients: this checkout {ours[many]['cpu']:.2f} s, "
              f"{_SIDES[1].label} {theirs[many]['cpu']:.2f} s ({change:+.1f}%);"
              f" {many} clients against none: {(ours[many]['cpu'] / ours[0]['cpu'] - 1) * 100:+.1f}% here, "
              f"{(theirs[many]['cpu'] / theirs[0]['cpu'] - 1) * 100:+.1f}% there")
    elif len(medians) > 2:
        many = args.clients
        print()
        for side, med in zip(_SIDES, medians, strict=True):
            print(f"{side.label}: server CPU with {many} clients {med[many]['cpu']:.2f} s, none {med[0]['cpu']:.2f} s, "
                  f"{(med[many]['cpu'] / med[0]['cpu'] - 1) * 100:+.1f}%; {med[many]['per_client_min']:.0f} messages, "
                  f"{med[many]['chars_per_client'] / 1e6:.2f} MB per client")


if __name__ == "__main__":
    main()
