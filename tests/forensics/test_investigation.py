"""Timeline, incidents, export (jsonl, OCSF, Timesketch), DuckDB query, and the CLI around them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ledgers import Built
from scripted_attack import FLOODER, PROBER

from sas.cli import main
from sas.events import RuntimeEvent, Verdict
from sas.forensics.export import export_lines, missing_required, to_ocsf
from sas.forensics.incidents import find_incidents
from sas.forensics.ledger import load_ledger
from sas.forensics.timeline import ForensicEvent, filter_events, ledger_events, parse_time


@pytest.fixture(scope="module")
def events(built: Built) -> list[ForensicEvent]:
    return ledger_events(load_ledger(built.paths["db"]))


ATTACKER = f"ip:{PROBER}"


def test_timeline_merges_sub_logs_in_time_order(events: list[ForensicEvent], built: Built) -> None:
    assert len(events) >= 10_000
    assert [e.time for e in events] == sorted(e.time for e in events)
    assert len({e.origin for e in events}) == 2
    assert [e.request_id for e in events] == [e.request_id for e in built.events]


def test_filters(events: list[ForensicEvent]) -> None:
    mine = filter_events(events, client=ATTACKER, detections_only=True)
    assert mine and all(e.client_id == ATTACKER and e.is_detection for e in mine)
    one = filter_events(events, request=events[500].request_id)
    assert [e.event_id for e in one] == [events[500].event_id]
    late = filter_events(events, since=events[9000].time)
    assert len(late) >= len(events) - 9000 and all(e.time >= events[9000].time for e in late)
    inst = filter_events(events, instance=events[0].instance_id[-6:])
    assert inst and all(e.instance_id == events[0].instance_id for e in inst)
    assert parse_time("2026-09-21T14:13:20Z") == 1_790_000_000.0
    assert parse_time("1h", now=7200.0) == 3600.0


def test_incidents_group_each_clients_campaign(events: list[ForensicEvent]) -> None:
    incidents = find_incidents(events)
    assert [i.client_id for i in incidents] == [ATTACKER, f"ip:{FLOODER}"]  # the probe, then the flood
    for inc in incidents:
        assert inc.categories[0][0] == "model" and dict(inc.verdicts) == {"block": inc.detections}
        mine = [e for e in events if e.is_detection and e.client_id == inc.client_id]
        assert inc.detections == len(mine) == inc.requests
        assert (inc.first_event, inc.last_event) == (mine[0].event_id, mine[-1].event_id)
        assert len(inc.instances) == (2 if inc.client_id == ATTACKER else 1)
    # a quiet gap longer than the window splits the campaign
    assert len(find_incidents(events, window=1.0)) > 1


def _ev(event: str, verdict: Verdict, details: dict[str, object], threat: str = "runtime-compromise") -> ForensicEvent:
    e = RuntimeEvent(1.0, event, "audit", "infrastructure", threat, "high", verdict, "r", "c", "i", "f", "aws", details)
    d = e.to_dict()
    d.pop("verdict")
    return ForensicEvent(event_id="o:1", origin="o", seq=1, verdict=verdict.value, **d)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("event", "verdict", "details", "class_uid"),
    [
        ("detection", Verdict.BLOCK, {"score": 0.9}, 2004),
        ("egress", Verdict.ALLOW, {"target": "10.0.0.1:443"}, 4001),
        ("subprocess", Verdict.ALLOW, {"command": "sh -c id"}, 1007),
        ("file-write", Verdict.ALLOW, {"path": "/var/task/x.py"}, 1001),
        ("sdk-call", Verdict.ALLOW, {"operation": "iam:CreateUser"}, 6003),
        ("invocation", Verdict.ALLOW, {}, 6003),
        ("egress", Verdict.ALERT, {"target": "evil.example:4444"}, 2004),
        ("egress", Verdict.ALLOW, {"target": "host:²"}, 4001),  # a digit int() refuses: int("²") raised
    ],
)
def test_ocsf_classes_carry_their_required_fields(
    event: str, verdict: Verdict, details: dict[str, object], class_uid: int
) -> None:
    record = to_ocsf(_ev(event, verdict, details))
    assert record["class_uid"] == class_uid
    assert record["type_uid"] == class_uid * 100 + record["activity_id"]
    assert missing_required(record) == []
    assert record["metadata"]["uid"] == "o:1"


def test_export_formats(events: list[ForensicEvent]) -> None:
    plain = [json.loads(x) for x in export_lines(events[:50], "jsonl")]
    assert {"event_id", "time", "event", "verdict", "client_id", "instance_id", "details"} <= set(plain[0])
    sketch = [json.loads(x) for x in export_lines(events[:50], "timesketch")]
    assert all({"message", "datetime", "timestamp_desc"} <= set(r) for r in sketch)
    ocsf = [json.loads(x) for x in export_lines(events, "ocsf")]
    assert {r["class_uid"] for r in ocsf} == {2004, 6003} and all(not missing_required(r) for r in ocsf)


def test_query_runs_sql_with_duckdb(events: list[ForensicEvent]) -> None:
    from sas.forensics.query import format_result, run_query

    result = run_query(
        events,
        "SELECT client_id, count(*) AS n, max(details->>'$.status') AS status FROM events "
        "WHERE verdict <> 'allow' AND event = 'invocation' GROUP BY client_id ORDER BY n DESC",
    )
    assert result.columns == ("client_id", "n", "status") and [r[0] for r in result.rows] == [ATTACKER, f"ip:{FLOODER}"]
    assert [r[2] for r in result.rows] == ["400", "413"]  # the probe got 400s, the flood 413s
    assert "(2 rows)" in format_result(result)


def test_cli_commands(
    built: Built, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = str(built.paths["jsonl"])
    pub = tmp_path / "k.vkey"
    pub.write_text(str(built.signer.verifier))
    assert main(["forensics", "verify", ledger, "--pub", str(pub), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "ok"
    monkeypatch.setenv("SAS_LEDGER", f"jsonl:{ledger}")  # LEDGER may come from the environment
    assert main(["forensics", "incidents", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["client_id"] == ATTACKER
    assert main(["forensics", "timeline", "--client", ATTACKER, "--detections"]) == 0
    assert ATTACKER in capsys.readouterr().out
    assert main(["forensics", "query", "SELECT count(*) AS n FROM events", "-f", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"n": len(built.events)}]
    out = tmp_path / "o.jsonl"
    assert main(["forensics", "export", "--format", "ocsf", "-o", str(out)]) == 0
    assert len(out.read_text().splitlines()) == len(built.events)


def test_cli_unusable_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["forensics", "verify", str(tmp_path / "missing.db")]) == 2
    junk = tmp_path / "junk.jsonl"
    junk.write_text("hello\n")
    assert main(["forensics", "verify", str(junk)]) == 2
    not_ledger = tmp_path / "x.db"
    import sqlite3

    sqlite3.connect(not_ledger).execute("create table t(x)").connection.commit()
    assert main(["forensics", "verify", str(not_ledger)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 3 and "Traceback" not in err


def test_cli_verify_exit_1_names_the_first_bad_event(
    built: Built, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = built.copy("jsonl", tmp_path)
    lines = path.read_bytes().split(b"\n")
    idx = [i for i, line in enumerate(lines) if line.startswith(b'{"_sas_log"')]
    del lines[idx[100]]
    path.write_bytes(b"\n".join(lines))
    pub = tmp_path / "k.vkey"
    pub.write_text(str(built.signer.verifier))
    assert main(["forensics", "verify", str(path), "--pub", str(pub)]) == 1
    out = capsys.readouterr().out
    assert "TAMPERED: deleted; first bad event" in out


@pytest.mark.parametrize("damage", ["none", "forged-unsigned-sub-log", "corrupted-last-checkpoint", "unsigned-tail"])
def test_cli_verify_strict_fails_what_is_only_unverified(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    """Without --strict these are warnings (exit 0): a pipeline that must know every event is signed uses it."""
    from ledgers import edit_lines, realistic_events, write_ledger

    from sas.events.checkpoint import Signer

    path = tmp_path / "l.jsonl"
    # checkpoints every 40 events, flushes every 50: unclosed, the writer leaves 20 written events unsigned
    # (kept referenced: a writer dropped unclosed is closed, and signs, when it is collected)
    writer = write_ledger(
        path, realistic_events(110, instances=1), Signer.generate(), every=40, close=damage != "unsigned-tail"
    )
    forged = b'{"_sas_log":"sas-ledger/f/forged","_sas_seq":0,"category":"","client_id":"x","details":{},'
    forged += b'"detector":"shield","event":"invocation","function":"f","instance_id":"forged","platform":"aws",'
    forged += b'"request_id":"r","severity":"info","threat":"","time":1.0,"verdict":"allow"}'

    def damaged(lines: list[bytes]) -> list[bytes]:
        if damage == "forged-unsigned-sub-log":
            return [*lines[:3], forged, *lines[3:]]
        if damage == "corrupted-last-checkpoint":
            last = max(i for i, line in enumerate(lines) if line.startswith(b'{"_sas_checkpoint"'))
            lines[last] = lines[last][:40] + b"\xff" + lines[last][41:]  # no longer valid UTF-8 JSON
        return lines

    edit_lines(path, damaged)
    assert main(["forensics", "verify", str(path)]) == 0
    capsys.readouterr()
    assert main(["forensics", "verify", str(path), "--strict"]) == (0 if damage == "none" else 1)
    out = capsys.readouterr().out
    assert ("INCOMPLETE (--strict)" in out) == (damage != "none")
    assert main(["forensics", "verify", str(path), "--strict", "-f", "json"]) == (0 if damage == "none" else 1)
    report = json.loads(capsys.readouterr().out)
    assert report["complete"] == (damage == "none") and report["status"] == "ok"
    assert report["unparsed_records"] == (1 if damage == "corrupted-last-checkpoint" else 0)
    writer.close()


def test_hostile_ids_in_the_ledger_cannot_drive_the_investigators_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A caller chooses request ids (Azure's x-ms-request-id header) and more: timeline, incidents, query and
    verify printed them raw, so an escape sequence in one ran in the investigator's terminal."""
    from ledgers import write_ledger

    from sas.events.checkpoint import Signer

    hostile = "\x1b]0;owned\x07\x1b[2J\nforged row"
    fields = ("detection", "extraction", "model", "model-extraction", "high", Verdict.ALERT, hostile, hostile)
    events = [RuntimeEvent(1.79e9 + i, *fields, "i-1", "f", "azure", {"score": 0.9}) for i in range(6)]
    path = tmp_path / "l.jsonl"
    write_ledger(path, events, Signer.generate(), every=1000)
    for command in (["timeline"], ["incidents"], ["query", "SELECT request_id, client_id FROM events"], ["verify"]):
        main(["forensics", command[0], str(path), *command[1:]])
        out = capsys.readouterr().out
        assert "\x1b" not in out and "\x07" not in out and "\nforged row" not in out, command
        assert "\\x1b" in out or command == ["verify"], command
