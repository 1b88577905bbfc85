"""Suppressions: inline ``sas:ignore`` comments and a baseline file of fingerprints with expiry dates.

Inline, in any file with ``#`` or ``//`` comments (YAML, HCL, Python, shell), on the flagged line or the
line just above it::

    AuthType: NONE  # sas:ignore SAS-IAC-001 public demo endpoint, no data behind it
    # sas:ignore SAS-IAM-004,SAS-IAM-003 deploy role, reviewed in SEC-123

Rule ids must be named (there is no blanket ignore), and what follows them is the reason.

The baseline (``sas scan --baseline FILE``) is JSON::

    {"version": 1, "suppressions": [
      {"fingerprint": "<from the JSON report>", "rule_id": "SAS-IAM-001", "path": "template.yaml",
       "expires": "2027-03-31", "reason": "legacy admin role, removal tracked in OPS-42"}]}

A finding's fingerprint (rule, path and evidence, not the line) is in every JSON report, so
``python -m sas.scan.suppress REPORT.json --expires 2027-03-31 --reason "..."`` writes a baseline of
everything a report found. An entry past its ``expires`` date stops suppressing and the scan notes it,
so accepted risk is reviewed instead of forgotten. Suppressed findings are counted in a note; they never
vanish without a trace.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sas.errors import ConfigError
from sas.scan.context import ScanContext
from sas.scan.findings import Finding

_INLINE = re.compile(r"(?:#|//)\s*sas:ignore\s+((?:SAS-[A-Z]+-\d+)(?:\s*,\s*SAS-[A-Z]+-\d+)*)(.*)$")
_MAX_READ = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class BaselineEntry:
    fingerprint: str
    expires: date
    rule_id: str = ""
    path: str = ""
    reason: str = ""


def load_baseline(path: str | Path) -> list[BaselineEntry]:
    """Read a baseline file; a missing, malformed or undated one is a configuration error (exit 2)."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read baseline {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ConfigError(f"baseline {path} is not valid JSON: {exc}") from None
    items = doc.get("suppressions") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise ConfigError(f"baseline {path} has no 'suppressions' list")
    out = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("fingerprint"), str):
            raise ConfigError(f"baseline {path}: entry {index} has no fingerprint")
        try:
            expires = date.fromisoformat(str(item.get("expires", "")))
        except ValueError:
            raise ConfigError(f"baseline {path}: entry {index} needs an 'expires' date (YYYY-MM-DD)") from None
        out.append(
            BaselineEntry(
                item["fingerprint"],
                expires,
                str(item.get("rule_id", "")),
                str(item.get("path", "")),
                str(item.get("reason", "")),
            )
        )
    return out


class _InlineIndex:
    """``sas:ignore`` comments of the files findings point at, read lazily from the scanned tree."""

    def __init__(self, target: Path) -> None:
        self.target = target
        self.cache: dict[str, dict[int, set[str]]] = {}

    def rules_at(self, path: str, line: int) -> set[str]:
        table = self.cache.get(path)
        if table is None:
            table = self._read(path)
            self.cache[path] = table
        return table.get(line, set()) | table.get(line - 1, set())

    def _read(self, path: str) -> dict[int, set[str]]:
        if "!" in path:  # inside an archive: use the baseline instead
            return {}
        file = self.target if self.target.is_file() else self.target / path
        try:
            with file.open("rb") as fh:
                data = fh.read(_MAX_READ)
        except OSError:
            return {}
        if b"sas:ignore" not in data:
            return {}
        table: dict[int, set[str]] = {}
        for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            match = _INLINE.search(line)
            if match:
                table[number] = {r.strip() for r in match.group(1).split(",")}
        return table


def apply(ctx: ScanContext, target: str | os.PathLike[str], today: date | None = None) -> None:
    """Drop suppressed findings from ``ctx`` (inline comments, then the baseline) and note what happened."""
    entries = load_baseline(ctx.settings.baseline) if ctx.settings.baseline else []  # a bad file fails every scan
    if not ctx.findings:
        return
    today = today or date.today()
    active = {e.fingerprint: e for e in entries if e.expires >= today}
    expired = [e for e in entries if e.expires < today]
    inline = _InlineIndex(Path(target))
    kept: list[Finding] = []
    by_comment = by_baseline = 0
    expired_hits: list[BaselineEntry] = []
    expired_prints = {e.fingerprint: e for e in expired}
    for finding in ctx.findings:
        line = finding.location.line
        if line is not None and finding.rule_id in inline.rules_at(finding.location.path, line):
            by_comment += 1
            continue
        if finding.fingerprint in active:
            by_baseline += 1
            continue
        if finding.fingerprint in expired_prints:
            expired_hits.append(expired_prints[finding.fingerprint])
        kept.append(finding)
    ctx.findings[:] = kept
    if by_comment:
        ctx.note(f"suppressed {by_comment} finding(s) by sas:ignore comments")
    if by_baseline:
        ctx.note(f"suppressed {by_baseline} finding(s) by baseline {ctx.settings.baseline}")
    for entry in expired_hits:
        ctx.note(
            f"baseline entry for {entry.rule_id or entry.fingerprint} at {entry.path or '?'} expired on "
            f"{entry.expires.isoformat()}; the finding is reported again"
        )


def baseline_from_report(report: dict[str, Any], expires: date, reason: str) -> dict[str, Any]:
    """A baseline that accepts every finding of a JSON report until ``expires``."""
    items = []
    for f in report.get("findings", []):
        if isinstance(f, dict) and "fingerprint" in f:
            items.append(
                {
                    "fingerprint": f["fingerprint"],
                    "rule_id": f.get("rule_id", ""),
                    "path": (f.get("location") or {}).get("path", ""),
                    "expires": expires.isoformat(),
                    "reason": reason,
                }
            )
    return {"version": 1, "suppressions": items}


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys

    parser = argparse.ArgumentParser(
        prog="python -m sas.scan.suppress", description="write a baseline from a JSON report"
    )
    parser.add_argument("report", help="output of sas scan --format json")
    parser.add_argument("--expires", required=True, help="YYYY-MM-DD after which the entries stop suppressing")
    parser.add_argument("--reason", required=True, help="why these findings are accepted")
    args = parser.parse_args(argv)
    try:
        report = json.loads(Path(args.report).read_text(encoding="utf-8"))
        expires = date.fromisoformat(args.expires)
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"sas: {exc}\n")
        return 2
    sys.stdout.write(json.dumps(baseline_from_report(report, expires, args.reason), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
