"""The attack scenarios every platform's tests run, with their assertions, written once.

Each platform test file keeps one named test per scenario (so each platform's tests show each acceptance
item) and hands it its harness: the Lambda runtime client, the Azure FunctionApp or the functions-framework
server. Whatever the platform, the attack function behind it is ``functions/actions.py`` with the
configuration ``runtime_harness.attack_config`` writes, so the same request must lead to the same events.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from runtime_harness import (
    ATTACK_SOURCES,
    Listener,
    Moto,
    alerts,
    attack_config,
    make_function_dir,
    signed_tampered_function,
)

Event = dict[str, Any]


class Harness(Protocol):
    """A shielded attack function on one platform, in ``mode`` ("enforce" or "monitor"), its code in ``root/fn``."""

    mode: str
    root: Path

    def call(self, payload: Any, /) -> tuple[int, Any, list[Event]]:
        """Send ``payload`` (JSON, or raw bytes) as one request: the status, the decoded body, the new events."""
        ...


def attack_function(platform: str, root: Path, mode: str, moto: Moto) -> Path:
    """``functions/<platform>_function.py`` in ``root/fn``: the function every scenario runs against."""
    return make_function_dir(root / "fn", ATTACK_SOURCES[platform], attack_config(mode, root, moto))


def tampered_attack_function(platform: str, root: Path, mode: str, moto: Moto) -> Path:
    """The attack function, checked at cold start against its signed release, with its model since replaced."""
    config = attack_config(mode, root, moto)
    return signed_tampered_function(root, ATTACK_SOURCES[platform], config, ["model.joblib", f"{platform}_function.py"])


def only(events: list[Event], kind: str) -> Event:
    found = [e for e in events if e["event"] == kind]
    assert len(found) == 1, events
    return found[0]


def blocks(harness: Harness) -> bool:
    return harness.mode == "enforce"


def benign_predictions_raise_no_alerts(harness: Harness, *, platform: str, function: str, client_id: str) -> None:
    for features in ([5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]):
        status, payload, events = harness.call({"features": features, "sdk": True})
        assert status == 200 and payload["label"] in {0, 1, 2}
        assert alerts(events) == []
        summary = only(events, "invocation")
        assert summary["verdict"] == "allow"
        assert summary["details"]["sdk_calls"] == ["sts:GetCallerIdentity"]
        assert summary["platform"] == platform and summary["function"] == function
        assert summary["client_id"] == client_id


def egress_outside_allow_list(harness: Harness, listener: Listener) -> None:
    before = listener.connections
    status, payload, events = harness.call({"action": "egress", "port": listener.port})
    event = only(events, "egress")
    assert event["details"]["port"] == listener.port and event["threat"] == "runtime-compromise"
    if blocks(harness):
        assert status == 403 and set(payload) == {"error", "request_id"} and event["verdict"] == "block"
        assert listener.connections == before
    else:
        assert status == 200 and payload == {"egress": "connected"} and event["verdict"] == "alert"


def subprocess_spawn(harness: Harness) -> None:
    status, payload, events = harness.call({"action": "subprocess"})
    event = only(events, "subprocess")
    assert event["details"]["argv"] == ["true"]
    if blocks(harness):
        assert (status, event["verdict"]) == (403, "block")
    else:
        assert (status, payload, event["verdict"]) == (200, {"subprocess": "ran"}, "alert")


def write_to_code_directory(harness: Harness) -> None:
    target = harness.root / "fn" / "injected.py"
    status, _, events = harness.call({"action": "write_code"})
    assert only(events, "file-write")["details"]["path"] == str(target)
    assert (status, target.exists()) == ((403, False) if blocks(harness) else (200, True))


def tmp_residue_reported_on_next_invocation(harness: Harness) -> None:
    """Left in /tmp by one invocation: the policy reports it when the next one starts, in either mode."""
    status, _, events = harness.call({"action": "tmp_residue", "name": "stash.bin"})
    assert status == 200 and [e for e in events if e["event"] == "tmp-residue"] == []
    _, _, events = harness.call({"action": "noop"})
    event = only(events, "tmp-residue")
    assert event["details"]["files"] == ["stash.bin"]
    assert event["threat"] == "cross-invocation-contamination" and event["verdict"] == "alert"


def unexpected_assume_role(harness: Harness) -> None:
    status, payload, events = harness.call({"action": "assume_role"})
    event = only(events, "sdk-call")
    assert event["details"]["action"] == "sts:AssumeRole"
    assert event["details"]["role"] == "arn:aws:iam::123456789012:role/admin"
    assert event["threat"] == "privilege-escalation"
    if blocks(harness):
        assert status == 403 and event["verdict"] == "block"
    else:
        assert payload == {"assumed": True} and event["verdict"] == "alert"


def tampered_model_recorded(events: list[Event], mode: str) -> None:
    """The cold-start check's event for a model replaced after signing (how the platform fails differs)."""
    [event] = [e for e in events if e["event"] == "manifest"]
    assert event["details"]["changed"] == ["model.joblib"]
    assert event["severity"] == "critical" and event["threat"] == "cold-start-tampering"
    assert event["verdict"] == ("block" if mode == "enforce" else "alert")
