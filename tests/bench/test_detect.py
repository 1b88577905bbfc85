"""A small version of `sas bench detect`, asserting the acceptance properties on the single-instance runs."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from sas.bench.detect import EXTRACTION, PLAIN, summarise, write_results
from sas.bench.runner import outcome_dict, run_attack, run_benign
from sas.bench.targets import LocalTarget
from sas.cli import main


@pytest.mark.parametrize("which", ["digits_task", "tabular_task"])
def test_every_attack_is_detected_and_benign_clients_are_left_alone(which: str, request: pytest.FixtureRequest) -> None:
    task = request.getfixturevalue(which)
    outcomes = [
        run_attack(
            LocalTarget(task.baseline, task.victim), task.split, task.victim, name, deployment="single", budget=300
        )
        for name in PLAIN
    ]
    missed = [o.attack for o in outcomes if not o.detected]
    assert not missed
    extraction = [o.queries_to_detection for o in outcomes if o.attack in EXTRACTION]
    assert statistics.median(extraction) <= 200  # type: ignore[type-var]
    # caught before the budget: the block (403) stops the attacker well short of it; the flood gets 429s
    stopped = [o for o in outcomes if o.kind != "abuse"]
    assert all(o.queries_to_block is not None and o.queries_to_block < 300 for o in stopped)
    flood = next(o for o in outcomes if o.kind == "abuse")
    assert flood.queries_to_block is not None or flood.throttled > 0
    benign = run_benign(
        LocalTarget(task.baseline, task.victim), task.split, deployment="single", clients=100, mean_queries=25
    )
    assert benign.client_fpr <= 0.01
    assert benign.request_block_rate <= 0.001
    summary = summarise(outcomes, [benign])
    assert summary["all_plain_detected"] and summary["max_benign_client_fpr"] <= 0.01


def test_equation_solving_on_the_linear_model_is_stopped_before_it_completes(tabular_task) -> None:
    # Tramèr's attack needs d+1 = 31 exact answers; degraded answers and the block come first
    o = run_attack(
        LocalTarget(tabular_task.baseline, tabular_task.victim),
        tabular_task.split,
        tabular_task.victim,
        "equation-solving",
        deployment="single",
    )
    assert o.detected and o.queries_to_block is not None and o.queries_to_block < 31
    assert o.result["fidelity"] < 0.9


def test_cold_start_resets_are_reported_as_the_attackers_win_on_memory_state(digits_task) -> None:
    # honest adaptive case: with per-instance memory wiped every 5 queries the attacker is never blocked
    o = run_attack(
        LocalTarget(digits_task.baseline, digits_task.victim),
        digits_task.split,
        digits_task.victim,
        "uniform-random",
        deployment="single",
        budget=60,
        reset_every=5,
        variant="cold-start-reset-5",
    )
    assert o.queries_to_block is None and o.queries_made == 60


def test_results_file_and_cli_usage_errors(digits_task, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    o = run_attack(
        LocalTarget(digits_task.baseline, digits_task.victim),
        digits_task.split,
        digits_task.victim,
        "uniform-random",
        deployment="single",
    )
    out = tmp_path / "r.json"
    write_results({"attacks": [outcome_dict(o)], "summary": summarise([o], [])}, out)
    data = json.loads(out.read_text())
    assert data["attacks"][0]["detected"] is True and data["summary"]["plain_detected"] == 1
    assert main(["bench", "detect", "--tasks", "mnist", "--out", str(out)]) == 2
    assert "unknown task" in capsys.readouterr().err
