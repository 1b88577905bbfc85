"""Ledgers produced by real shielded invocations (sas.Shield with the AWS adapter), verified and tampered with."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scripted_attack import LambdaContext, api_event, environment, shielded_handlers

from sas.events.anchor import SqliteAnchor
from sas.events.checkpoint import load_verifier
from sas.forensics.incidents import find_incidents
from sas.forensics.ledger import load_ledger
from sas.forensics.timeline import ledger_events
from sas.forensics.verify import verify_ledger
from sas.integrity import generate_private_key, write_keypair

ATTACKER = "203.0.113.66"


@pytest.fixture(scope="module")
def shielded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("shielded")
    key, pub = write_keypair(generate_private_key(), root / "ledger")
    ledger = root / "ledger.jsonl"
    anchor = root / "anchor.db"
    with (
        environment(SAS_SIGNING_KEY=str(key), SAS_ANCHOR=f"sqlite:{anchor}"),
        shielded_handlers("digits", f"jsonl:{ledger}", max_body_bytes=4000, label=1) as handlers,
    ):
        for i in range(1600):
            attacker = i % 4 == 0 and 400 <= i < 1200
            ip = ATTACKER if attacker else f"198.51.100.{i % 17}"
            features = [[1e9, 0.2, 0.3, 0.4]] if attacker else [[0.1, 0.2, 0.3, 0.4]]
            handlers[i % 2](api_event(ip, json.dumps({"features": features}), i), LambdaContext(f"req-{i}"))
    return {"ledger": ledger, "pub": pub, "anchor": anchor}


def test_real_invocations_verify_and_show_the_attacker(shielded: dict[str, Path]) -> None:
    ledger = load_ledger(shielded["ledger"])
    anchor = SqliteAnchor(str(shielded["anchor"]))
    report = verify_ledger(ledger, [load_verifier(shielded["pub"])], anchor)
    anchor.close()
    assert not report.tampered, report.problems
    assert len(report.logs) == 2 and report.events >= 1600
    assert all(s.verified_size == s.events == s.anchored_size for s in report.logs)
    incidents = find_incidents(ledger_events(ledger))
    assert [i.client_id for i in incidents] == [f"ip:{ATTACKER}"]
    assert incidents[0].detections == 200 and dict(incidents[0].verdicts) == {"block": 200}


def test_real_invocation_ledger_edits_are_named(shielded: dict[str, Path], tmp_path: Path) -> None:
    lines = shielded["ledger"].read_bytes().split(b"\n")
    blocked = next(i for i, line in enumerate(lines) if b'"verdict":"block"' in line and b'"event":"detection"' in line)
    edited = tmp_path / "edited.jsonl"
    lines[blocked] = lines[blocked].replace(b'"verdict":"block"', b'"verdict":"allow"')
    edited.write_bytes(b"\n".join(lines))
    report = verify_ledger(load_ledger(edited), [load_verifier(shielded["pub"])])
    assert report.tampered and report.kinds == ("modified",)
    deleted = tmp_path / "deleted.jsonl"
    deleted.write_bytes(b"\n".join(lines[:blocked] + lines[blocked + 1 :]))
    report = verify_ledger(load_ledger(deleted), [load_verifier(shielded["pub"])])
    assert report.tampered and report.kinds == ("deleted",)
