"""What a served host logs while it runs one large iterate, and what that logging costs, per log level.

    .venv/bin/python bench/log_level.py                              # iterate over 10,000 at INFO and DEBUG
    .venv/bin/python bench/log_level.py --items 100000 --rounds 1
    git worktree add --detach /tmp/base main && .venv/bin/python bench/log_level.py --compare-with /tmp/base

Each server is ``invoke-host serve`` in a child process (every installed plugin, SQLite in a temp folder) with its
stderr a pipe that this script drains line by line, as journald or a container runtime would: the lines are
counted by logger name, and the WARNING and ERROR ones kept to print. Per round and per (checkout, level) one
batch of one iterate is enqueued over HTTP and its status polled every ``--poll`` seconds until the item is
finished; printed per run: the wall time from the POST to the finished item, the server's CPU time over it (all its
threads, as ``bench/server_path.py`` measures it), the slowest status answer (how long the event loop could not
answer), the lines logged and the item's ``attempts`` (above 1: its lease was lost and it was claimed again). A
short ``--lease-seconds`` (default 3 s) makes a loop held for long enough lose the lease.

``--calls N`` measures the log calls alone instead: a child interpreter logs N lines from its event loop, once
with a ``StreamHandler`` on the root (the set-up before issue #11) and once with :func:`configure_logging` (the
queue and its writer thread), its stderr a pipe this script reads ``--read-delay`` seconds after every 64 KiB (a
slow reader, as a terminal is); printed: the loop's wall and CPU time in the log calls, its slowest call, and the
lines that arrived.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from graph_overhead import iterate
from server_path import LIMITS, Q, _checkout_path, _cpu_seconds, _free_port, stop_process, wait_for_answer

RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (\w+) ([\w.]+): ")


@dataclass
class Drained:
    """Lines a server wrote, counted as they come."""

    lines: int = 0
    by_logger: collections.Counter[str] = field(default_factory=collections.Counter)
    warnings: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def snapshot(self) -> tuple[int, collections.Counter[str]]:
        with self.lock:
            return self.lines, collections.Counter(self.by_logger)


def _drain(stream: IO[bytes], into: Drained) -> None:
    for raw in stream:
        line = raw.decode(errors="replace")
        found = RECORD.match(line)
        with into.lock:
            into.lines += 1
            if found:
                into.by_logger[found[2]] += 1
                if found[1] in ("WARNING", "ERROR", "CRITICAL") and len(into.warnings) < 20:
                    into.warnings.append(line.rstrip()[:200])


class LoggedServer:
    """``invoke-host serve`` at ``level`` with its stderr drained by a thread of this process."""

    def __init__(self, root: Path, level: str, lease: float, env: dict[str, str]) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environment = {
            **os.environ,
            **{f"INVOKE_HOST_{k.upper()}": str(v) for k, v in LIMITS.items()},
            "INVOKE_HOST_LOG_LEVEL": level,
            "INVOKE_HOST_LEASE_SECONDS": str(lease),
            **env,
        }
        cli = Path(sys.executable).with_name("invoke-host")
        self.process = subprocess.Popen(
            [str(cli), "serve", "--root", str(root), "--port", str(self.port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=environment,
        )
        assert self.process.stdout is not None
        self.drained = Drained()
        self._reader = threading.Thread(target=_drain, args=(self.process.stdout, self.drained), daemon=True)
        self._reader.start()
        wait_for_answer(self.process, self.url)

    def close(self) -> None:
        stop_process(self.process)
        self._reader.join(10)


@dataclass
class Run:
    seconds: float
    cpu: float
    slowest_answer: float
    lines: int
    by_logger: collections.Counter[str]
    attempts: int
    status: str


def run_once(server: LoggedServer, client: httpx.Client, graph: dict[str, Any], poll: float, timeout: float) -> Run:
    lines_before, loggers_before = server.drained.snapshot()
    cpu = _cpu_seconds(server.process.pid)
    start = time.perf_counter()
    r = client.post(f"{Q}/enqueue_batch", json={"batch": {"graph": graph}})
    assert r.status_code == 201, r.text
    enqueued = r.json()
    batch_id, item_id = enqueued["batch"]["batch_id"], enqueued["item_ids"][0]
    slowest = 0.0
    while True:
        asked = time.perf_counter()
        status = client.get(f"{Q}/b/{batch_id}/status").json()
        slowest = max(slowest, time.perf_counter() - asked)
        if status["completed"] + status["failed"] + status["canceled"] == 1:
            break
        if time.perf_counter() - start > timeout:
            raise TimeoutError(f"item {item_id} did not finish within {timeout:.0f} s")
        time.sleep(poll)
    seconds = time.perf_counter() - start
    cpu = _cpu_seconds(server.process.pid) - cpu
    item = client.get(f"{Q}/i/{item_id}").json()
    time.sleep(0.5)  # the lines the server wrote by the end have reached the reader
    lines_after, loggers_after = server.drained.snapshot()
    return Run(
        seconds,
        cpu,
        slowest,
        lines_after - lines_before,
        loggers_after - loggers_before,
        int(item.get("attempts", 0)),
        str(item["status"]),
    )


_CALLS_CHILD = """
import asyncio, logging, sys, time
kind, calls = sys.argv[1], int(sys.argv[2])
if kind == "stream":
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.DEBUG)
else:
    from invoke_host.logging_config import configure_logging
    configure_logging("debug", max_backlog=calls + 10)
log = logging.getLogger("invoke_host.events")

async def main() -> None:
    slowest = 0.0
    start, cpu = time.perf_counter(), time.thread_time()
    for n in range(calls):
        before = time.perf_counter()
        log.debug("Event invocation_complete (queue bench, item %d): %s", n, {"node": "add", "value": n})
        slowest = max(slowest, time.perf_counter() - before)
    print(time.perf_counter() - start, time.thread_time() - cpu, slowest, flush=True)

asyncio.run(main())
"""


def log_calls(calls: int, read_delay: float) -> None:
    print(f"{calls:,} log calls from an event loop, stderr read {read_delay} s after every 64 KiB")
    print(f"{'handler':10} {'loop wall s':>11} {'loop CPU s':>10} {'slowest call ms':>15} {'lines':>8}")
    for kind in ("stream", "queue"):
        child = subprocess.Popen(
            [sys.executable, "-c", _CALLS_CHILD, kind, str(calls)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert child.stderr is not None and child.stdout is not None
        lines = 0
        while chunk := child.stderr.read(65536):
            lines += chunk.count("\n")
            time.sleep(read_delay)
        wall, cpu, slowest = (float(x) for x in child.stdout.read().split())
        child.wait()
        print(f"{kind:10} {wall:>11.3f} {cpu:>10.3f} {slowest * 1000:>15.2f} {lines:>8}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=10_000, help="items of the iterate")
    parser.add_argument("--rounds", type=int, default=3, help="runs per checkout and level, alternated")
    parser.add_argument("--levels", default="INFO,DEBUG", help="log levels to serve at, comma-separated")
    parser.add_argument("--poll", type=float, default=0.05, help="seconds between batch-status polls")
    parser.add_argument("--lease-seconds", type=float, default=3.0, help="the servers' INVOKE_HOST_LEASE_SECONDS")
    parser.add_argument("--timeout", type=float, default=900, help="longest wait for one item")
    parser.add_argument(
        "--compare-with",
        type=Path,
        metavar="CHECKOUT",
        help="also serve from another checkout (git worktree add DIR REV), in the same run",
    )
    parser.add_argument("--calls", type=int, help="measure this many log calls alone (see above), no server")
    parser.add_argument("--read-delay", type=float, default=0.01, help="with --calls: the reader's pause per 64 KiB")
    args = parser.parse_args()
    if args.calls:
        log_calls(args.calls, args.read_delay)
        return
    checkouts: list[tuple[str, dict[str, str]]] = [("this checkout", {})]
    if args.compare_with is not None:
        checkouts.append((str(args.compare_with), {"PYTHONPATH": _checkout_path(args.compare_with)}))
    levels = [level.strip().upper() for level in args.levels.split(",")]
    graph = iterate(args.items)
    runs: dict[tuple[str, str], list[Run]] = collections.defaultdict(list)
    warnings: dict[tuple[str, str], list[str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        servers: dict[tuple[str, str], tuple[LoggedServer, httpx.Client]] = {}
        try:
            for label, env in checkouts:
                for level in levels:
                    root = Path(tmp) / f"{len(servers)}"
                    server = LoggedServer(root, level, args.lease_seconds, env)
                    client = httpx.Client(base_url=server.url, timeout=args.timeout)
                    servers[(label, level)] = (server, client)
                    run_once(server, client, iterate(10), args.poll, args.timeout)  # warm-up: lazy imports
            for _ in range(args.rounds):
                for key, (server, client) in servers.items():
                    runs[key].append(run_once(server, client, graph, args.poll, args.timeout))
        finally:
            for key, (server, client) in servers.items():
                client.close()
                server.close()
                warnings[key] = server.drained.warnings
    print(
        f"iterate over {args.items:,}, {args.rounds} round(s), lease {args.lease_seconds} s; "
        f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    print(
        f"{'checkout':28} {'level':7} {'wall s':>8} {'CPU s':>8} {'slowest answer s':>16} {'lines':>9} "
        f"{'attempts':>8} status"
    )
    for (label, level), done in runs.items():
        print(
            f"{label:28} {level:7} {statistics.median(r.seconds for r in done):>8.2f} "
            f"{statistics.median(r.cpu for r in done):>8.2f} {max(r.slowest_answer for r in done):>16.3f} "
            f"{statistics.median(r.lines for r in done):>9.0f} {max(r.attempts for r in done):>8} "
            f"{','.join(sorted({r.status for r in done}))}"
        )
        print(f"    per run wall {[round(r.seconds, 2) for r in done]}, CPU {[round(r.cpu, 2) for r in done]}")
        print(f"    lines by logger (last run): {dict(done[-1].by_logger.most_common(8))}")
        for line in warnings[(label, level)]:
            print(f"    ! {line}")


if __name__ == "__main__":
    main()
