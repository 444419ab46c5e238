"""The log's one writer thread (invoke_host.log_queue, configure_logging): lines in order and in the one format, one
thread however often logging is configured, nothing lost at exit, and a full backlog dropped and counted.

Each case runs in a child interpreter whose stderr is a real pipe, as a server's is: the root logger there has no
handlers (pytest's own would make configure_logging leave the root alone, as it should).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.test_server_logging import RECORD

CONFIGURE = """
import asyncio, atexit, logging, sys, threading
from invoke_host.logging_config import configure_logging, stop_log_writer
"""


def _child(script: str) -> tuple[str, list[str]]:
    """Run ``script`` in a child; its stdout and its stderr's lines."""
    done = subprocess.run(
        [sys.executable, "-c", CONFIGURE + textwrap.dedent(script)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout, done.stderr.splitlines()


def test_records_from_the_loop_and_a_thread_reach_stderr_in_order_in_the_one_format() -> None:
    _out, lines = _child("""
        configure_logging("info", max_backlog=100_000)
        log = logging.getLogger("invoke_host.test")

        async def main() -> None:
            for n in range(2_000):
                log.info("loop %d", n)
            await asyncio.to_thread(lambda: [log.warning("thread %d", n) for n in range(2_000)])
            try:
                1 / 0
            except ZeroDivisionError:
                log.exception("failed on the loop")

        asyncio.run(main())
    """)
    records = [RECORD.match(line) for line in lines]
    continued = [line for line, found in zip(lines, records, strict=True) if found is None]
    assert (
        continued[0] == "Traceback (most recent call last):" and continued[-1] == "ZeroDivisionError: division by zero"
    )
    messages = [(found[1], found[2], found[3]) for found in records if found is not None]
    assert messages == (
        [("INFO", "invoke_host.test", f"loop {n}") for n in range(2_000)]
        + [("WARNING", "invoke_host.test", f"thread {n}") for n in range(2_000)]
        + [("ERROR", "invoke_host.test", "failed on the loop")]
    )


def test_configuring_logging_again_leaves_one_writer_and_loses_no_line() -> None:
    out, lines = _child("""
        log = logging.getLogger("invoke_host.test")
        for n in range(3):
            configure_logging("info", max_backlog=10_000)
            for i in range(500):
                log.info("round %d line %d", n, i)
        print(sorted(t.name for t in threading.enumerate()))
        print(len([h for h in logging.getLogger().handlers]))
    """)
    assert out.splitlines() == ["['MainThread', 'invoke-host-log']", "1"]
    assert all(RECORD.match(line) for line in lines), [line for line in lines if not RECORD.match(line)][:3]
    assert [line.split(": ", 1)[1] for line in lines] == [f"round {n} line {i}" for n in range(3) for i in range(500)]


def test_lines_logged_at_exit_are_written_and_those_after_the_writer_stopped_still_redacted() -> None:
    _out, lines = _child("""
        from invoke_host.security import install_log_redaction

        log = logging.getLogger("invoke_host.test")
        # Registered before configure_logging's hook, so it runs after the writer has stopped.
        atexit.register(lambda: log.warning("after the writer: token s3cret-token"))
        configure_logging("info", max_backlog=100_000)
        install_log_redaction(["s3cret-token"])
        for n in range(20_000):
            log.info("line %d", n)
        # The process ends here, with most of the lines still queued.
    """)
    messages = [line.split(": ", 1)[1] for line in lines]
    assert messages == [f"line {n}" for n in range(20_000)] + ["after the writer: token [redacted]"]


def test_a_full_backlog_drops_new_records_and_the_writer_says_how_many_naming_the_setting() -> None:
    # The child logs while nobody reads its stderr: the pipe fills (64 KiB), the writer waits on it, the queue
    # (10 records) fills, and later records are dropped. Once the child says it is done, its stderr is read.
    script = CONFIGURE + textwrap.dedent("""
        configure_logging("info", max_backlog=10)
        log = logging.getLogger("invoke_host.test")
        for n in range(5_000):
            log.info("line %d %s", n, "x" * 100)
        print("logged", flush=True)
        sys.stdin.readline()
    """)
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "logged\n"
        _out, err = child.communicate("\n", timeout=120)
    finally:
        child.kill()
    assert child.returncode == 0, err
    lines = err.splitlines()
    written = [line for line in lines if " INFO invoke_host.test: line " in line]
    drops = [line for line in lines if " WARNING invoke_host.logging: " in line]
    assert drops and all("max_log_backlog (10)" in line for line in drops), lines[-3:]
    dropped = sum(int(line.split(": ", 1)[1].split()[0]) for line in drops)
    assert 0 < dropped and len(written) + dropped == 5_000
    # What was written is the first records and then some, in order; every line in the one format.
    numbers = [int(line.split(" line ", 1)[1].split()[0]) for line in written]
    assert numbers == sorted(numbers) and numbers[0] == 0
    assert all(RECORD.match(line) for line in lines), [line for line in lines if not RECORD.match(line)][:3]
