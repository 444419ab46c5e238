"""Loaded by a server that ``bench/run_costs.py`` starts (this folder first on its PYTHONPATH): timers, no changes.

Every 0.5 s it writes to ``$RUN_COSTS_OUT`` (a Python literal): per collector generation, how many collections
ran and their CPU seconds (``gc.callbacks``, the collecting thread's ``time.thread_time``); and the calls, CPU
seconds and rows of the two row encoders (``ProgressWriter._rows`` on a worker thread, the SQLite store's
``_results_json`` on the loop), wrapped once their modules are imported.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
from typing import Any

_OUT = os.environ.get("RUN_COSTS_OUT")


def _install(out: str) -> None:
    stats: dict[str, list[float]] = {f"gc{g}": [0, 0.0, 0] for g in range(3)}
    stats["rows"] = [0, 0.0, 0]
    stats["results_json"] = [0, 0.0, 0]
    started = [0.0]

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.thread_time()
        else:
            entry = stats[f"gc{info['generation']}"]
            entry[0] += 1
            entry[1] += time.thread_time() - started[0]

    gc.callbacks.append(on_gc)

    def timed(key: str, f: Any, count: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t = time.thread_time()
            result = f(*args, **kwargs)
            entry = stats[key]
            entry[0] += 1
            entry[1] += time.thread_time() - t
            entry[2] += count(args, result)
            return result
        return wrapper

    def patch_when_imported() -> None:
        done: set[str] = set()
        while len(done) < 2:
            time.sleep(0.05)
            sq = sys.modules.get("invoke_sqlite_storage.session_queue")
            if "sq" not in done and sq is not None and hasattr(sq, "_results_json"):
                sq._results_json = timed("results_json", sq._results_json, lambda a, r: len(a[0]))
                done.add("sq")
            sp = sys.modules.get("invoke_host.queue.session_progress")
            if "pw" not in done and sp is not None and hasattr(sp, "ProgressWriter"):
                sp.ProgressWriter._rows = timed("rows", sp.ProgressWriter._rows, lambda a, r: len(r))
                done.add("pw")

    def dump() -> None:
        while True:
            time.sleep(0.5)
            with open(out + ".tmp", "w") as f:
                f.write(repr(stats))
            os.replace(out + ".tmp", out)

    threading.Thread(target=patch_when_imported, daemon=True).start()
    threading.Thread(target=dump, daemon=True).start()


if _OUT:
    _install(_OUT)
