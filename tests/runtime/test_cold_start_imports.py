"""What a cold start loads: ``import sas.runtime`` and ``Shield(...)`` with the default stdout ledger, in a fresh
interpreter. The signing machinery (the checkpoint modules, hashlib, cryptography) and the network stack load
when they are first needed, never at set-up; the ledger is still signed and verifiable, and the cold-start event
is on record before the first request. Checked through ``sys.modules``, never by timing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sas.forensics.ledger import load_ledger
from sas.forensics.verify import verify_ledger

# Loaded by nothing a cold start runs, in a bare interpreter (a real function may load some of them itself).
NOT_AT_COLD_START = (
    "sas.integrity",
    "cryptography",
    "sas.events.checkpoint",  # the first checkpoint imports it
    "sas.events.store_records",  # likewise (or a flush of several instances' sub-logs)
    "sas.events.anchor",  # only with an anchor configured
    "hashlib",  # the first batch of hashes
    "base64",
    "socket",  # the audit hook watches lookups in _socket
    "sas._references",  # the runtime cites no framework reference
    "pathlib",  # Shield.from_config imports it (with urllib.parse and ipaddress, ~2.5 ms)
)
# Imported at the first checkpoint (which makes the ephemeral signing key).
AT_FIRST_CHECKPOINT = ("sas.events.checkpoint", "sas.events.store_records", "hashlib", "cryptography")

PROBE = """
import json, sys
import sas.runtime
shield = sas.runtime.Shield({"forensics": {"ledger": "stdout"}, "runtime": {"tmp_dir": sys.argv[1]}})
at_setup = sorted(sys.modules)
print("--- set-up done ---", flush=True)
shield.close()  # signs what was written: the first checkpoint
json.dump({"at_setup": at_setup, "after_close": sorted(sys.modules)}, sys.stderr)
"""


def test_cold_start_defers_signing_and_network_modules_and_the_ledger_still_verifies(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path)], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    modules = json.loads(run.stderr.strip().splitlines()[-1])
    loaded = [m for m in modules["at_setup"] if m in NOT_AT_COLD_START or m.split(".")[0] == "cryptography"]
    assert loaded == []
    assert set(AT_FIRST_CHECKPOINT) <= set(modules["after_close"])

    # the cold-start event was written (flushed) by the set-up itself, before any request
    before, marker, after = run.stdout.partition("--- set-up done ---\n")
    assert marker
    entries = [json.loads(line) for line in before.splitlines() if line.startswith('{"_sas_log"')]
    assert [e["event"] for e in entries] == ["cold-start"]
    assert '"_sas_checkpoint"' in after and '"_sas_meta"' in after

    ledger_file = tmp_path / "ledger.jsonl"
    ledger_file.write_text(run.stdout.replace("--- set-up done ---\n", ""))
    report = verify_ledger(load_ledger(ledger_file))
    assert not report.tampered, report.problems
    assert report.events == 1 and [s.verified_size for s in report.logs] == [1]
