"""np.load reads every .npy/.npz header with ast.literal_eval, which compiles to a syntax tree only: the
dynamic-code rule must let it through (regression: guard_model(baseline="x.npz") was refused in enforce
mode), while any compile that yields code stays blocked."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
from inprocess import active, attempt, events, make_shield


def test_np_load_of_npz_after_init_is_not_dynamic_code(tmp_path: Path) -> None:
    np.savez(tmp_path / "arrays.npz", a=np.arange(4.0))
    shield = make_shield(tmp_path)
    with active(shield):
        outcome = attempt(lambda: float(np.load(tmp_path / "arrays.npz", allow_pickle=False)["a"].sum()))
        literal = attempt(ast.literal_eval, "{'descr': '<f8', 'shape': (4,)}")
    assert outcome == "ok" and literal == "ok"
    assert events(shield, "dynamic-code") == []


def test_compiling_code_after_an_ast_parse_is_still_blocked(tmp_path: Path) -> None:
    shield = make_shield(tmp_path)
    with active(shield):
        tree = ast.parse("1 + 1", mode="eval")  # a syntax tree only: allowed
        outcome = attempt(compile, tree, "<x>", "eval")  # a code object: dynamic code
    assert outcome == "PolicyViolation"
    assert len(events(shield, "dynamic-code")) == 1
