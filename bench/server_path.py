"""The server path against the engine: each graph in-process and through a started server, in the same run.

    .venv/bin/python bench/server_path.py            # chain of 1,000 add; iterate over 10,000 (a few minutes)
    .venv/bin/python bench/server_path.py --large    # also iterate over 100,000 items
    git worktree add /tmp/base <rev> && .venv/bin/python bench/server_path.py --compare-with /tmp/base

In-process is ``run_graph`` with the output cache on, as in ``bench/graph_overhead.py`` (same graphs, same
limits). Through the server is what an API client sees: ``invoke-host serve`` in a child process (every
installed plugin, SQLite in a temp folder, uvicorn on 127.0.0.1), one batch per graph enqueued over HTTP, the
batch's status polled until its item is finished, then ``GET /i/{item_id}``; the clock runs from the POST to
the end of the GET. Each size runs ``--repeats`` times on both sides (one run for the 100,000 graph), the two
sides alternating so that both see the same load of a shared machine, and the best times are compared. Also
printed: the server's RSS (idle after a warm-up item, after each graph, and after all), and the database size
before and after ``PUT /prune``. The server is started the way a user starts it, so it runs on the allocator
``invoke-host serve`` picks (``PYTHONMALLOC=malloc``, jemalloc or tcmalloc where installed: docs/deploy.md; set
``INVOKE_HOST_ALLOCATOR=malloc`` for glibc's, or pass ``--pymalloc`` to keep Python's own).
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import invoke_core_nodes.plugin as core_nodes_plugin

sys.path.insert(0, str(Path(__file__).parent))
from graph_overhead import chain, iterate

from invoke_host.config import HostConfig
from invoke_host.engine import OutputCache, run_graph
from invoke_host.host import build_host

Q = "/api/v1/queue/bench"
# The 100,000-item iterate needs the limits raised on both sides (the defaults stop at 10,000 items).
LIMITS = {"max_collection_size": 100_000, "max_session_nodes": 200_010}


@dataclass
class Spec:
    name: str
    graph: dict[str, Any]
    repeats: int


@dataclass
class ServerRun:
    seconds: float
    run_seconds: float
    """started_at to completed_at, as the server recorded them."""
    get_seconds: float
    get_bytes: int
    nodes: int
    cpu_seconds: float = 0.0
    """The server process's CPU time (user + system, all threads) from the POST to the end of the GET."""
    polls: int = 0
    """Batch-status requests made before the item was seen finished (each costs the server 0.7-1.1 ms of CPU)."""


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def _cpu_seconds(pid: int) -> float:
    """CPU time of a process so far, all its threads: the nanoseconds each thread ran (``/proc/<pid>/task/*/
    schedstat``), or where that is missing user + system time in clock ticks (``/proc/<pid>/stat``: 10 ms steps,
    a tenth of a chain's CPU). A thread that ended between two reads takes its time with it: the server's threads
    (the loop, the default executor's, aiosqlite's) live as long as the server."""
    try:
        return sum(int((task / "schedstat").read_text().split()[0])
                   for task in Path(f"/proc/{pid}/task").iterdir()) / 1e9
    except (OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _settled_rss(server: Server, *, longest: float = 30.0) -> float:
    """The server's RSS (MiB) once it has not fallen by 1 MiB for 2 s (at most ``longest`` seconds)."""
    deadline = time.monotonic() + longest
    last = server.rss_mib()
    while time.monotonic() < deadline:
        time.sleep(2.0)
        now = server.rss_mib()
        if now > last - 1.0:
            return now
        last = now
    return last


def _db_bytes(db: Path) -> tuple[int, int]:
    """(database file, its WAL) in bytes."""
    wal = db.with_name(db.name + "-wal")
    return db.stat().st_size, wal.stat().st_size if wal.exists() else 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def in_process_host() -> Any:
    return build_host(HostConfig(**LIMITS), plugins=[("core_nodes", core_nodes_plugin)], entry_points=False)


def run_in_process(host: Any, graph: dict[str, Any]) -> tuple[float, int, float]:
    """Seconds, nodes and CPU seconds of one ``run_graph`` (validation and the output cache included)."""
    start, cpu = time.perf_counter(), time.process_time()
    result = run_graph(host, graph, cache=OutputCache())
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert result.status == "completed", result.errors
    return seconds, len(result.state.executed_history), cpu


def _seconds_between(started: str, completed: str) -> float:
    from datetime import datetime

    return (datetime.fromisoformat(completed) - datetime.fromisoformat(started)).total_seconds()


def run_through_server(client: httpx.Client, graph: dict[str, Any], poll: float, timeout: float,
                       pid: int | None = None, first_poll: float = 0.0) -> ServerRun:
    """One graph through the server; ``pid``: the server's process, whose CPU time is then measured too.

    ``first_poll``: seconds after the POST before the first status poll (then every ``poll`` seconds or so)."""
    cpu = _cpu_seconds(pid) if pid is not None else 0.0
    start = time.perf_counter()
    r = client.post(f"{Q}/enqueue_batch", json={"batch": {"graph": graph}})
    assert r.status_code == 201, r.text
    enqueued = r.json()
    batch_id, item_id = enqueued["batch"]["batch_id"], enqueued["item_ids"][0]
    deadline = start + timeout
    polls = 0
    if first_poll > 0:
        time.sleep(max(0.0, first_poll - (time.perf_counter() - start)))
    while True:
        polls += 1
        status = client.get(f"{Q}/b/{batch_id}/status").json()
        if status["completed"] + status["failed"] + status["canceled"] == 1:
            break
        now = time.perf_counter()
        if now > deadline:
            raise TimeoutError(f"item {item_id} did not finish within {timeout:.0f} s")
        # Polls cost the server CPU that the run competes for: at most 2% late, and never more than 20 a second
        # on a long run (a poll every 5 ms took a tenth of the server's loop).
        time.sleep(max(poll, min(0.05, (now - start) * 0.02)))
    got = time.perf_counter()
    r = client.get(f"{Q}/i/{item_id}")
    end = time.perf_counter()
    assert r.status_code == 200, r.text
    item = r.json()
    assert item["status"] == "completed", (item["status"], item.get("error_message"))
    nodes = _executed_count(item)
    cpu = _cpu_seconds(pid) - cpu if pid is not None else 0.0
    return ServerRun(end - start, _seconds_between(item["started_at"], item["completed_at"]), end - got,
                     len(r.content), nodes, cpu, polls)


def _executed_count(item: dict[str, Any]) -> int:
    """How many nodes the item ran, from whichever shape the item view has (before #11: the whole session)."""
    if "executed_history" in item["session"]:
        return len(item["session"]["executed_history"])
    return int(item["results"]["count"])


def wait_for_answer(process: subprocess.Popen[bytes], url: str, output: Callable[[], str] = lambda: "") -> None:
    """Poll a started server's version route until it answers, for at most 120 s; an exit on the way is an error
    carrying what ``output`` says the server printed."""
    deadline = time.monotonic() + 120
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}: {output()}")
        try:
            if httpx.get(f"{url}/api/v1/app/version", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not start within 120 s")
        time.sleep(0.1)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Ask a started server to stop, and kill it if it has not within 60 s."""
    process.terminate()
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class Server:
    """``invoke-host serve`` in a child process, on a free loopback port, with its data root in ``root``."""

    def __init__(self, root: Path, env: dict[str, str] | None = None) -> None:
        self.root = root
        self.port = _free_port()
        self.log = root / "server.log"
        env = {**os.environ, **{f"INVOKE_HOST_{k.upper()}": str(v) for k, v in LIMITS.items()},
               "INVOKE_HOST_LOG_LEVEL": "WARNING", **(env or {})}
        cli = Path(sys.executable).with_name("invoke-host")
        self._log_file = self.log.open("wb")
        self.process = subprocess.Popen(
            [str(cli), "serve", "--root", str(root / "data"), "--port", str(self.port)],
            stdout=self._log_file, stderr=subprocess.STDOUT, env=env,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        wait_for_answer(self.process, self.url, lambda: self.log.read_text())

    @property
    def db(self) -> Path:
        return self.root / "data" / "databases" / "invoke.db"

    def rss_mib(self) -> float:
        return _rss_kib(self.process.pid) / 1024

    def close(self) -> None:
        stop_process(self.process)
        self._log_file.close()


@dataclass
class Served:
    """One server's figures over the whole run."""

    label: str
    server: Server
    client: httpx.Client
    best: dict[str, ServerRun]
    rss_after: dict[str, float]
    best_cpu: dict[str, float] = field(default_factory=dict)
    """The least server CPU seconds of each graph's runs (a figure a loaded machine moves less than wall time)."""
    idle: float = 0.0
    rss_end: float = 0.0
    rss_settled: float = 0.0
    """RSS once it stopped falling (a large session's state is freed in steps after its item is answered)."""
    cache: dict[str, Any] = field(default_factory=dict)
    """The output cache's status (``GET /app/invocation_cache/status``) after all runs."""
    db_before: tuple[int, int] = (0, 0)
    db_after: tuple[int, int] = (0, 0)
    pruned: int = 0


def _checkout_path(checkout: Path) -> str:
    """PYTHONPATH that makes a server import the host, the SDK and the plugins of another checkout first."""
    plugins = sorted(p for p in (checkout / "plugins").iterdir() if (p / "pyproject.toml").exists())
    return os.pathsep.join(str(p) for p in [checkout, checkout / "sdk", *plugins])


def _report(specs: list[Spec], ours: dict[str, tuple[float, int, float]], ours_cpu: dict[str, float], side: Served,
            large: bool) -> None:
    print(f"\n{side.label}")
    print(f"{'graph':22} {'nodes':>7} {'in-process s':>12} {'server s':>9} {'ratio':>6} "
          f"{'run s':>7} {'GET s':>7} {'GET MB':>7} {'RSS after MiB':>13} {'CPU: in-proc':>12} {'server':>7} "
          f"{'ratio':>6}")
    for spec in specs:
        mine, nodes, _ = ours[spec.name]
        run = side.best[spec.name]
        mine_cpu, server_cpu = ours_cpu[spec.name], side.best_cpu[spec.name]
        print(f"{spec.name:22} {nodes:>7} {mine:>12.3f} {run.seconds:>9.3f} {run.seconds / mine:>5.1f}x "
              f"{run.run_seconds:>7.3f} {run.get_seconds:>7.3f} {run.get_bytes / 1e6:>7.2f} "
              f"{side.rss_after[spec.name]:>13.0f} {mine_cpu:>12.3f} {server_cpu:>7.3f} {server_cpu / mine_cpu:>5.1f}x")
    if large:
        small, big = ours["iterate over 10,000"], ours["iterate over 100,000"]
        s_small, s_big = side.best["iterate over 10,000"].seconds, side.best["iterate over 100,000"].seconds
        growth = (big[0] / big[1]) / (small[0] / small[1])
        served_growth = (s_big / big[1]) / (s_small / small[1])
        print(f"iterate, time per node at 100,000 / at 10,000: in-process {growth:.2f}, "
              f"server {served_growth:.2f} (1.0 = linear)")
        c_small, c_big = side.best_cpu["iterate over 10,000"], side.best_cpu["iterate over 100,000"]
        print(f"iterate, CPU per node at 100,000 / at 10,000: in-process "
              f"{(big[2] / big[1]) / (small[2] / small[1]):.2f}, server {(c_big / big[1]) / (c_small / small[1]):.2f}")
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"server RSS: idle {side.idle:.0f} MiB, after all runs {side.rss_end:.0f} MiB "
          f"(+{side.rss_end - side.idle:.0f} MiB); settled {side.rss_settled:.0f} MiB "
          f"(+{side.rss_settled - side.idle:.0f} MiB)")
    if side.cache:
        print(f"output cache: {side.cache['size']} entries, {side.cache['size_bytes'] / 2**20:.1f} MiB counted "
              f"(limit {side.cache['max_bytes'] / 2**20:.0f} MiB)")
    mib = 1024 * 1024
    before, after = side.db_before, side.db_after
    print(f"database: before prune {before[0] / mib:.1f} MiB (+ WAL {before[1] / mib:.1f} MiB); pruned "
          f"{side.pruned} items; after {after[0] / mib:.1f} MiB (+ WAL {after[1] / mib:.1f} MiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--large", action="store_true", help="also iterate over 100,000 items (several minutes)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each graph below 100,000 items, per side")
    parser.add_argument("--poll", type=float, default=0.005, help="least seconds between batch-status polls")
    parser.add_argument("--timeout", type=float, default=900, help="longest wait for one item")
    parser.add_argument("--pymalloc", action="store_true", help="run the server on Python's own allocator")
    parser.add_argument("--compare-with", type=Path, metavar="CHECKOUT",
                        help="also run a server from another checkout (git worktree add DIR REV), in the same run")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the in-process host has no storage backend and says so
    specs = [Spec("chain of 1,000 add", chain(1_000), args.repeats),
             Spec("iterate over 10,000", iterate(10_000), args.repeats)]
    if args.large:
        specs.append(Spec("iterate over 100,000", iterate(100_000), 1))
    host = in_process_host()
    ours: dict[str, tuple[float, int, float]] = {}
    ours_cpu: dict[str, float] = {}
    allocator = {"PYTHONMALLOC": "pymalloc"} if args.pymalloc else {}
    wanted = [("this checkout", allocator)]
    if args.compare_with is not None:
        wanted.append((f"checkout {args.compare_with}", {**allocator, "PYTHONPATH": _checkout_path(args.compare_with)}))
    with tempfile.TemporaryDirectory() as tmp:
        sides: list[Served] = []
        try:
            for n, (label, env) in enumerate(wanted):
                (Path(tmp) / str(n)).mkdir()
                server = Server(Path(tmp) / str(n), env=env)
                sides.append(Served(label, server, httpx.Client(base_url=server.url, timeout=args.timeout), {}, {}))
            run_in_process(host, chain(10))
            for side in sides:
                run_through_server(side.client, chain(10), args.poll, args.timeout)  # warm-up: lazy imports
                side.idle = side.server.rss_mib()
            for spec in specs:
                # Alternated, so every side runs under the same load of a shared machine; best of each.
                mine: list[tuple[float, int, float]] = []
                runs: dict[str, list[ServerRun]] = {side.label: [] for side in sides}
                for _ in range(spec.repeats):
                    mine.append(run_in_process(host, spec.graph))
                    for side in sides:
                        runs[side.label].append(run_through_server(side.client, spec.graph, args.poll, args.timeout,
                                                                   side.server.process.pid))
                ours[spec.name] = min(mine)
                ours_cpu[spec.name] = min(m[2] for m in mine)
                for side in sides:
                    side.best[spec.name] = min(runs[side.label], key=lambda r: r.seconds)
                    side.best_cpu[spec.name] = min(r.cpu_seconds for r in runs[side.label])
                    side.rss_after[spec.name] = side.server.rss_mib()
            time.sleep(1.0)  # anything a server frees after answering has had its moment
            for side in sides:
                side.rss_end = side.server.rss_mib()
            for side in sides:
                side.rss_settled = _settled_rss(side.server)
                side.cache = side.client.get("/api/v1/app/invocation_cache/status").json()
                side.db_before = _db_bytes(side.server.db)
                r = side.client.put(f"{Q}/prune")
                assert r.status_code == 200, r.text
                side.pruned = r.json()["deleted"]
                side.db_after = _db_bytes(side.server.db)
        finally:
            for side in sides:
                side.client.close()
                side.server.close()
    for side in sides:
        _report(specs, ours, ours_cpu, side, args.large)


if __name__ == "__main__":
    main()
