"""tools/mutation cannot rot: its targets, hand-made mutants and equivalence notes still fit the code.

These need no cosmic-ray (an optional extra): they read the tool's files and the modules they name.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parent.parent


def _load_tool() -> object:
    spec = importlib.util.spec_from_file_location("invoke_mutation_run", ROOT / "tools" / "mutation" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the classes are made
    spec.loader.exec_module(module)
    return module


mutation: Any = _load_tool()
TARGETS = mutation.load_targets()


def test_every_target_names_modules_and_tests_that_exist() -> None:
    assert {"names", "state", "validation", "session_queue", "address_policy", "pickle_safety"} <= set(TARGETS)
    for target in TARGETS.values():
        for module in target.modules:
            assert (ROOT / module.path).is_file(), module.path
        for test in target.tests:
            if not test.startswith("tests/security/"):  # filled by the security branches
                assert (ROOT / test).exists(), test


@pytest.mark.parametrize("mutant", [(t.name, h) for t in TARGETS.values() for h in t.hand_made],
                         ids=lambda m: f"{m[0]}: {m[1].name}")
def test_every_hand_made_mutant_still_applies_once(mutant: tuple[str, Any]) -> None:
    _, hand = mutant
    assert (ROOT / hand.module).read_text().count(hand.find) == 1, (
        f"{hand.name!r}: update its 'find' in tools/mutation/targets.toml to the code as it is now")


def test_every_equivalence_note_still_names_a_line_of_its_module() -> None:
    for e in mutation.load_equivalents():
        assert e.target in TARGETS, e
        lines = [line.strip() for line in (ROOT / e.module).read_text().splitlines()]
        assert any(line == e.line and (not e.after or lines[i - 1] == e.after) for i, line in enumerate(lines)), (
            f"stale entry in tools/mutation/equivalent.toml: {e.module}: {e.line!r}")
        assert e.reason, e


def test_only_the_sufficient_operator_subset_runs() -> None:
    assert not mutation.redundant("core/ReplaceBinaryOperator_Add_Sub")
    assert mutation.redundant("core/ReplaceBinaryOperator_Add_LShift")
    assert not mutation.redundant("core/ReplaceBinaryOperator_BitOr_BitAnd")
    assert mutation.redundant("core/ReplaceBinaryOperator_BitOr_Pow")
    assert not mutation.redundant("core/ReplaceComparisonOperator_Eq_NotEq")
    assert mutation.redundant("core/ReplaceComparisonOperator_Eq_Is")
    assert not mutation.redundant("core/ReplaceComparisonOperator_Is_IsNot")
    assert mutation.redundant("core/ReplaceComparisonOperator_Is_Lt")
    assert not mutation.redundant("core/ReplaceComparisonOperator_Lt_LtE")  # boundaries always run
    assert not mutation.redundant("core/NumberReplacer")


class _Spec:
    def __init__(self, operator: str, line: int, col: int, definition: str | None = None) -> None:
        self.operator_name, self.start_pos, self.definition_name = operator, (line, col), definition


SOURCE = '''from __future__ import annotations


def f(a: int | None, b: dict[str, int]) -> int | None:
    c = {**b, "x": 1}
    return (a or 0) | 2  # a real binary or
x = 1  # pragma: no mutate
'''


@pytest.mark.parametrize(("spec", "reason"), [
    (_Spec("core/ReplaceBinaryOperator_BitOr_BitAnd", 4, 13), "inside a type annotation"),
    (_Spec("core/ReplaceBinaryOperator_BitOr_BitAnd", 4, 50), "inside a type annotation"),
    (_Spec("core/ReplaceBinaryOperator_Pow_Mul", 5, 9), "not a binary Pow (dict or call unpacking)"),
    (_Spec("core/ReplaceBinaryOperator_BitOr_BitAnd", 6, 20), None),
    (_Spec("core/NumberReplacer", 7, 4), "marked '# pragma: no mutate'"),
    (_Spec("core/NumberReplacer", 5, 19, "f"), "in f, outside this target's definitions"),
])
def test_mutants_that_cannot_change_behaviour_are_skipped(spec: _Spec, reason: str | None) -> None:
    module = mutation.Module("m.py", definitions=["<module>"] if spec.definition_name else None)
    assert mutation.skip_reason(spec, SOURCE, module, mutation._spans(SOURCE), all_operators=False) == reason
