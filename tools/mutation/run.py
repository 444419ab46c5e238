"""Mutation testing of chosen modules with cosmic-ray, against the focused tests that cover them.

    .venv/bin/python tools/mutation/run.py state              # one target from targets.toml
    .venv/bin/python tools/mutation/run.py names validation   # several, one after another
    .venv/bin/python tools/mutation/run.py --list
    .venv/bin/python tools/mutation/run.py pickle_safety --tests tests/security/<its threat module>.py

Each target runs in a scratch copy of the repository (tracked and untracked-but-not-ignored files), so the
working tree is never mutated, even when a run is interrupted. The copy is put first on the import path
(``PYTHONPATH``), ahead of the editable installs that point into the working tree, and the tests run
through a warm fork server (forkserver.py).

Before cosmic-ray runs, mutants that cannot change behaviour by construction are marked skipped:
operators inside type annotations (strings under ``from __future__ import annotations``), cosmic-ray's
"binary operator" mutants of ``*`` and ``**`` unpacking, and lines marked ``# pragma: no mutate``; so are
operator targets outside a sufficient subset (see ``redundant``). After them come the target's hand-made
mutants from targets.toml. Survivors judged equivalent by hand are listed with the reason in
``equivalent.toml``; the score counts only the others. See docs/testing.md.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import tomllib
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PACKAGE_ROOTS = ["", "sdk", *(f"plugins/{p.name}" for p in sorted((ROOT / "plugins").iterdir()) if p.is_dir())]
# Only the plugins a test run may need are loaded: the rest (schemathesis, hypothesis, faker) cost
# about 3 s of start-up per mutant and no test here uses them.
PYTEST_PLUGINS = ["-p", "asyncio", "-p", "anyio", "-p", "timeout", "-p", "invoke_host"]


@dataclass
class Module:
    path: str
    definitions: list[str] | None = None


@dataclass
class HandMade:
    """A mutant cosmic-ray cannot make (a changed regex, a deleted statement): replace ``find`` once."""

    module: str
    name: str
    find: str
    replace: str


@dataclass
class Target:
    name: str
    description: str
    tests: list[str]
    modules: list[Module]
    hand_made: list[HandMade] = field(default_factory=list)


@dataclass
class Equivalent:
    target: str
    module: str
    operator: str
    line: str
    column: int
    reason: str
    after: str = ""
    """The stripped line before it, where the line alone is not unique (a bare 'continue')."""


@dataclass
class Outcome:
    module: str
    operator: str
    line_no: int
    column: int
    line: str
    result: str  # killed | survived | equivalent | incompetent | skipped
    diff: str = ""
    why: str = ""


@dataclass
class Report:
    target: str
    seconds: float = 0.0
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, result: str) -> int:
        return sum(1 for o in self.outcomes if o.result == result)

    @property
    def score(self) -> float | None:
        killed, survived = self.count("killed"), self.count("survived")
        return killed / (killed + survived) if killed + survived else None

    def summary(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "mutants": len(self.outcomes) - self.count("skipped"),
            "killed": self.count("killed"),
            "survived": self.count("survived"),
            "equivalent": self.count("equivalent"),
            "incompetent": self.count("incompetent"),
            "skipped": self.count("skipped"),
            "score": None if self.score is None else round(self.score, 4),
            "seconds": round(self.seconds),
        }


def load_targets() -> dict[str, Target]:
    data = tomllib.loads((HERE / "targets.toml").read_text())
    return {
        name: Target(name, t.get("description", ""), list(t["tests"]),
                     [Module(m["path"], m.get("definitions")) for m in t["modules"]],
                     [HandMade(**h) for h in t.get("hand_made", [])])
        for name, t in data["targets"].items()
    }


def load_equivalents() -> list[Equivalent]:
    data = tomllib.loads((HERE / "equivalent.toml").read_text())
    return [Equivalent(**e) for e in data.get("equivalent", [])]


# -- the scratch copy ------------------------------------------------------------------------------


def copy_tree(dest: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, check=True, capture_output=True,
    ).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        if not src.is_file():
            continue  # deleted in the working tree but still in the index
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)


def test_env(tree: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(str(tree / r) for r in PACKAGE_ROOTS)
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def check_imports_from_copy(tree: Path, target: Target) -> None:
    """Fail loudly if the tests would import the working tree's modules instead of the mutated copy."""
    code = (
        "import importlib.util, sys\n"
        "for name in sys.argv[1:]:\n"
        "    print(importlib.util.find_spec(name).origin)\n"
    )
    names = [_module_name(m.path) for m in target.modules]
    out = subprocess.run([sys.executable, "-c", code, *names], cwd=tree, env=test_env(tree), check=True,
                         capture_output=True, text=True).stdout.split()
    for name, origin in zip(names, out, strict=True):
        if not Path(origin).resolve().is_relative_to(tree.resolve()):
            raise SystemExit(f"{name} would be imported from {origin}, not from the copy in {tree}")


def _module_name(path: str) -> str:
    parts = Path(path).with_suffix("").parts
    if parts[0] == "plugins":
        parts = parts[2:]
    elif parts[0] == "sdk":
        parts = parts[1:]
    return ".".join(parts)


# -- filters ---------------------------------------------------------------------------------------


def _char_col(line: bytes, byte_col: int) -> int:
    return len(line[:byte_col].decode("utf-8", errors="replace"))


def _spans(source: str) -> tuple[list[tuple[tuple[int, int], tuple[int, int]]], dict[str, list[Any]]]:
    """Annotation spans, and the spans of real binary operations by operator name."""
    tree = ast.parse(source)
    lines = source.encode().splitlines()

    def span(node: ast.AST) -> tuple[tuple[int, int], tuple[int, int]]:
        start = (node.lineno, _char_col(lines[node.lineno - 1], node.col_offset))  # type: ignore[attr-defined]
        end = (node.end_lineno, _char_col(lines[node.end_lineno - 1], node.end_col_offset))  # type: ignore[attr-defined]
        return start, end

    annotations = []
    binops: dict[str, list[Any]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.arg) and node.annotation is not None:
            annotations.append(span(node.annotation))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns is not None:
            annotations.append(span(node.returns))
        elif isinstance(node, ast.AnnAssign):
            annotations.append(span(node.annotation))
        elif isinstance(node, ast.BinOp):
            binops.setdefault(type(node.op).__name__, []).append(span(node))
    return annotations, binops


def _inside(pos: tuple[int, int], spans: list[Any]) -> bool:
    return any(start <= pos < end for start, end in spans)


# A sufficient subset of cosmic-ray's operator replacements, to keep runs to minutes: every site still gets
# mutants that flip it, move its boundary and swap its arithmetic, without the many further targets that
# fail the very same tests (2**63 -> 2>>63, 2&63, 2^63 ...). "==" keeps "!=", "<=" and ">="; "is" and
# "is not" keep only each other ("x == None" for "x is None" is no mutant at all). --all-operators turns
# this off.
_ARITHMETIC_TARGETS = {"Add", "Sub", "Mul", "Div"}
_BITWISE = {"BitOr", "BitAnd", "BitXor", "LShift", "RShift"}
_BITWISE_TARGETS = {"BitOr", "BitAnd", "BitXor", "Sub"}
_COMPARISON_TARGETS = {
    "Eq": {"NotEq", "LtE", "GtE"},
    "NotEq": {"Eq", "Lt", "Gt"},
    "Is": {"IsNot"},
    "IsNot": {"Is"},
}


def redundant(operator: str) -> bool:
    """Whether a mutant falls outside the sufficient subset above."""
    parts = operator.removeprefix("core/").split("_")
    if parts[0] == "ReplaceBinaryOperator" and len(parts) == 3:
        src, dst = parts[1], parts[2]
        return dst not in (_BITWISE_TARGETS if src in _BITWISE else _ARITHMETIC_TARGETS)
    if parts[0] == "ReplaceComparisonOperator" and len(parts) == 3:
        src, dst = parts[1], parts[2]
        return src in _COMPARISON_TARGETS and dst not in _COMPARISON_TARGETS[src]
    return False


def skip_reason(spec: Any, source: str, module: Module, spans: Any, *, all_operators: bool) -> str | None:
    annotations, binops = spans
    pos = tuple(spec.start_pos)
    line = source.splitlines()[pos[0] - 1]
    if "pragma: no mutate" in line:
        return "marked '# pragma: no mutate'"
    if _inside(pos, annotations):
        return "inside a type annotation"
    op = spec.operator_name
    if op.startswith("core/ReplaceBinaryOperator_"):
        name = op.split("_")[1]
        if not _inside(pos, binops.get(name, [])):
            return f"not a binary {name} (dict or call unpacking)"
    if not all_operators and redundant(op):
        return "outside the sufficient operator subset"
    if module.definitions is not None:
        definition = spec.definition_name or "<module>"
        if definition not in module.definitions:
            return f"in {definition}, outside this target's definitions"
    return None


# -- one target ------------------------------------------------------------------------------------


def run_target(target: Target, tests: list[str], work: Path, equivalents: list[Equivalent],
               timeout: float | None, *, all_operators: bool = False, rerun: bool = False) -> Report:
    report = Report(target.name)
    started = time.monotonic()
    tree = work / "tree"
    if tree.exists():
        shutil.rmtree(tree)
    copy_tree(tree)
    check_imports_from_copy(tree, target)
    env = test_env(tree)
    _precompile(tree, target)
    pytest_args = ["-x", "-q", "-p", "no:cacheprovider", *PYTEST_PLUGINS, *tests]
    sock = work / "forkserver.sock"
    sock.unlink(missing_ok=True)
    server = subprocess.Popen([sys.executable, str(HERE / "forkserver.py"), "serve", str(sock)], cwd=tree, env=env,
                              stdout=subprocess.PIPE, text=True)
    try:
        if server.stdout is None or "ready" not in server.stdout.readline():
            raise SystemExit(f"[{target.name}] the fork server did not start")
        return _run_sessions(target, tree, env, work, sock, pytest_args, equivalents, timeout, all_operators, rerun,
                             report, started)
    finally:
        server.terminate()
        server.wait()


def _precompile(tree: Path, target: Target) -> None:
    """Bytecode for every module but the mutated ones (which must always be compiled from what is on disk)."""
    import compileall

    mutated = {(tree / m.path).resolve() for m in target.modules}
    for root in PACKAGE_ROOTS:
        base = tree / root if root else tree / "invoke_host"
        for path in base.rglob("*.py"):
            if path.resolve() not in mutated and "tests" not in path.parts:
                compileall.compile_file(path, quiet=2)


def _run_sessions(target: Target, tree: Path, env: dict[str, str], work: Path, sock: Path, pytest_args: list[str],
                  equivalents: list[Equivalent], timeout: float | None, all_operators: bool, rerun: bool,
                  report: Report, started: float) -> Report:
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    client = [sys.executable, str(HERE / "forkserver.py"), "run", str(sock)]
    # The baseline runs through the server too, so a server that cannot run the tests never passes for
    # a run of killed mutants.
    baseline_start = time.monotonic()
    code = subprocess.run([*client, "600", "--", *pytest_args], cwd=tree, env=env).returncode
    baseline = time.monotonic() - baseline_start
    if code != 0:
        plain = subprocess.run([sys.executable, "-m", "pytest", *pytest_args], cwd=tree, env=env,
                               capture_output=True, text=True)
        log = work / "baseline.log"
        log.write_text(plain.stdout + plain.stderr)
        raise SystemExit(f"[{target.name}] the tests fail without any mutation (see {log}):\n{plain.stdout[-4000:]}")
    per_run = timeout if timeout is not None else max(30.0, 4 * baseline)
    print(f"[{target.name}] baseline passed in {baseline:.1f} s; each mutant gets {per_run:.0f} s", flush=True)
    pytest_cmd = [*client, str(per_run), "--", *pytest_args]

    for module in target.modules:
        module_file = tree / module.path
        source = module_file.read_text()
        spans = _spans(source)
        _canary(target, module_file, source, client, pytest_args, tree, env)
        session = work / f"{Path(module.path).stem}.sqlite"
        kept = work / f"{Path(module.path).stem}.source.py"
        resume = rerun and session.exists() and kept.exists() and kept.read_text() == source
        if not resume:
            session.unlink(missing_ok=True)
        kept.write_text(source)
        config = work / f"{Path(module.path).stem}.toml"
        config.write_text(
            "[cosmic-ray]\n"
            f"module-path = {json.dumps(str(module_file))}\n"
            f"timeout = {per_run + 10}\n"
            "excluded-modules = []\n"
            f"test-command = {json.dumps(' '.join(_quote(a) for a in pytest_cmd))}\n"
            "[cosmic-ray.distributor]\n"
            'name = "local"\n'
        )
        cosmic = [str(Path(sys.executable).parent / "cosmic-ray")]
        skipped: dict[str, str] = {}
        if resume:
            # Same module, more tests: the killed stay killed; only the survivors run again.
            with closing(sqlite3.connect(session)) as conn, conn:
                conn.execute("DELETE FROM work_results WHERE test_outcome = 'SURVIVED'")
        else:
            subprocess.run([*cosmic, "init", str(config), str(session)], cwd=tree, env=env, check=True)
        with use_db(str(session), WorkDB.Mode.open) as db:
            for item in db.work_items:
                why = skip_reason(item.mutations[0], source, module, spans, all_operators=all_operators)
                if why is not None:
                    skipped[item.job_id] = why
                    if not resume:
                        db.set_result(item.job_id, WorkResult(worker_outcome=WorkerOutcome.SKIPPED, output=why))
            pending = db.num_work_items - db.num_results
        print(f"[{target.name}] {module.path}: {pending} mutants to run ({len(skipped)} skipped)", flush=True)
        # One mutant at a time: cosmic-ray mutates the copy in place.
        subprocess.run([*cosmic, "exec", str(config), str(session)], cwd=tree, env=env, check=True)

        _collect(report, target, module, source, session, equivalents)
    hand = [_hand_made(target, mutant, tree, client, per_run, pytest_args, env) for mutant in target.hand_made]
    (work / "hand_made.json").write_text(json.dumps([o.__dict__ for o in hand], indent=2))
    report.outcomes += hand
    report.seconds = time.monotonic() - started
    return report


def _collect(report: Report, target: Target, module: Module, source: str, session: Path,
             equivalents: list[Equivalent]) -> None:
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome

    lines = source.splitlines()
    with use_db(str(session), WorkDB.Mode.open) as db:
        for item, result in db.completed_work_items:
            spec = item.mutations[0]
            line_no, col = spec.start_pos
            line = lines[line_no - 1]
            col -= len(line) - len(line.lstrip())  # within the stripped line: indenting a block moves no entry
            outcome = Outcome(module.path, spec.operator_name, line_no, col, line.strip(), "", result.diff or "")
            if result.worker_outcome == WorkerOutcome.SKIPPED:
                outcome.result, outcome.why = "skipped", result.output or ""
            elif result.worker_outcome != WorkerOutcome.NORMAL or result.test_outcome == TestOutcome.INCOMPETENT:
                outcome.result = "incompetent"
            elif result.test_outcome == TestOutcome.SURVIVED:
                before = lines[line_no - 2].strip() if line_no > 1 else ""
                match = _equivalent(equivalents, target.name, module.path, spec.operator_name, line, col, before)
                outcome.result, outcome.why = ("equivalent", match.reason) if match else ("survived", "")
            else:
                outcome.result = "killed"
            report.outcomes.append(outcome)


def _hand_made(target: Target, mutant: HandMade, tree: Path, client: list[str], per_run: float,
               pytest_args: list[str], env: dict[str, str]) -> Outcome:
    path = tree / mutant.module
    source = path.read_text()
    if source.count(mutant.find) != 1:
        raise SystemExit(f"[{target.name}] hand-made mutant {mutant.name!r}: {mutant.find!r} occurs "
                         f"{source.count(mutant.find)} times in {mutant.module}, not once; update targets.toml")
    at = source.index(mutant.find)
    line_no = source.count("\n", 0, at) + 1
    line = source.splitlines()[line_no - 1]
    path.write_text(source.replace(mutant.find, mutant.replace))
    try:
        code = subprocess.run([*client, str(per_run), "--", *pytest_args], cwd=tree, env=env).returncode
    finally:
        path.write_text(source)
    diff = f"- {mutant.find}\n+ {mutant.replace}"
    return Outcome(mutant.module, f"hand-made/{mutant.name}", line_no, len(line) - len(line.lstrip()), line.strip(),
                   "killed" if code != 0 else "survived", diff)


def report_only(target: Target, work: Path, equivalents: list[Equivalent]) -> Report:
    """The report of an earlier run in ``work``, with today's equivalent.toml."""
    report = Report(target.name)
    for module in target.modules:
        stem = Path(module.path).stem
        session, kept = work / f"{stem}.sqlite", work / f"{stem}.source.py"
        if not session.exists() or not kept.exists():
            raise SystemExit(f"[{target.name}] no earlier run of {module.path} in {work}")
        _collect(report, target, module, kept.read_text(), session, equivalents)
    hand = work / "hand_made.json"
    if hand.exists():
        report.outcomes += [Outcome(**o) for o in json.loads(hand.read_text())]
    return report


def _canary(target: Target, module_file: Path, source: str, client: list[str], pytest_args: list[str], tree: Path,
            env: dict[str, str]) -> None:
    """A module that cannot even be imported must fail the tests, or no mutant of it can ever be killed."""
    module_file.write_text('raise RuntimeError("mutation canary")\n' + source)
    try:
        code = subprocess.run([*client, "600", "--", *pytest_args], cwd=tree, env=env).returncode
    finally:
        module_file.write_text(source)
    if code == 0:
        raise SystemExit(f"[{target.name}] the tests pass with {module_file} broken: they do not import the copy")


def _quote(arg: str) -> str:
    return shlex.quote(arg)


def _equivalent(equivalents: list[Equivalent], target: str, module: str, operator: str, line: str,
                col: int, before: str) -> Equivalent | None:
    for e in equivalents:
        if (e.target, e.module, e.operator, e.line, e.column) == (target, module, operator, line.strip(), col) and (
            not e.after or e.after == before
        ):
            return e
    return None


# -- output ----------------------------------------------------------------------------------------


def print_report(report: Report) -> None:
    s = report.summary()
    score = "n/a" if s["score"] is None else f"{100 * s['score']:.1f}%"
    print(f"\n== {report.target}: {score} of non-equivalent mutants killed "
          f"({s['killed']} killed, {s['survived']} survived, {s['equivalent']} judged equivalent, "
          f"{s['incompetent']} incompetent, {s['skipped']} skipped) in {s['seconds']} s")
    hand = [o for o in report.outcomes if o.operator.startswith("hand-made/")]
    if hand:
        print(f"   of which hand-made: {sum(o.result == 'killed' for o in hand)} of {len(hand)} killed")
    for o in report.outcomes:
        if o.result == "survived":
            print(f"\n-- survived: {o.module}:{o.line_no} col {o.column} {o.operator}\n   line: {o.line}\n"
                  f"{o.diff.strip()}")


def main(argv: list[str] | None = None) -> int:
    targets = load_targets()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("targets", nargs="*", help=f"targets from targets.toml: {', '.join(targets)}")
    parser.add_argument("--list", action="store_true", help="list the targets and their tests")
    parser.add_argument("--tests", nargs="+", help="pytest arguments to use instead of the target's tests")
    parser.add_argument("--work-dir", type=Path, help="where copies and sessions go (default: a temporary folder)")
    parser.add_argument("--timeout", type=float, help="seconds per mutant (default: 4x the baseline, at least 30)")
    parser.add_argument("--all-operators", action="store_true", help="run every cosmic-ray operator target, "
                        "not only the sufficient subset")
    parser.add_argument("--rerun-survivors", action="store_true", help="with --work-dir of an earlier run: keep "
                        "its results where the module is unchanged and run only its survivors against today's tests")
    parser.add_argument("--report-only", action="store_true", help="with --work-dir of an earlier run: print its "
                        "report again (with today's equivalent.toml) without running anything")
    parser.add_argument("--json", type=Path, help="write the summaries (and survivors) to this file")
    args = parser.parse_args(argv)
    if args.list or not args.targets:
        for t in targets.values():
            print(f"{t.name:16} {t.description}\n{'':16} modules: {', '.join(m.path for m in t.modules)}\n"
                  f"{'':16} tests: {' '.join(t.tests)}")
        return 0
    unknown = [t for t in args.targets if t not in targets]
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}; known: {', '.join(targets)}")
    equivalents = load_equivalents()
    base = args.work_dir or Path(tempfile.mkdtemp(prefix="invoke-mutation-"))
    reports = []
    for name in args.targets:
        work = base / name
        work.mkdir(parents=True, exist_ok=True)
        if args.report_only:
            report = report_only(targets[name], work, equivalents)
        else:
            report = run_target(targets[name], args.tests or targets[name].tests, work, equivalents, args.timeout,
                                all_operators=args.all_operators, rerun=args.rerun_survivors)
        print_report(report)
        reports.append(report)
    if args.json:
        args.json.write_text(json.dumps([
            {**r.summary(), "survivors": [o.__dict__ for o in r.outcomes if o.result == "survived"],
             "equivalent": [o.__dict__ for o in r.outcomes if o.result == "equivalent"]}
            for r in reports
        ], indent=2))
    print(f"\nSessions and copies are in {base}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
