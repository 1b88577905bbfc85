"""The report for people: one aligned table, worst first, then a summary line."""

from __future__ import annotations

import shutil

from sas.display import visible
from sas.scan.findings import ScanResult


def _clip(text: str, width: int) -> str:
    text = " ".join(visible(text).split())
    return text if len(text) <= width else text[: max(width - 1, 1)] + "…"


def render(result: ScanResult, width: int | None = None) -> str:
    width = width or max(shutil.get_terminal_size((120, 24)).columns, 100)
    lines: list[str] = []
    if result.findings:
        sev_w, rule_w = 8, max(len(f.rule_id) for f in result.findings)
        locations = [visible(str(f.location)) for f in result.findings]
        loc_w = min(max(map(len, locations)), 48)
        msg_w = max(width - sev_w - rule_w - loc_w - 6, 30)
        lines.append(f"{'SEVERITY':<{sev_w}}  {'RULE':<{rule_w}}  {'LOCATION':<{loc_w}}  MESSAGE")
        for f, location in zip(result.findings, locations, strict=True):
            loc = _clip(location, loc_w) if len(location) > loc_w else location
            lines.append(
                f"{f.severity.value.upper():<{sev_w}}  {f.rule_id:<{rule_w}}  {loc:<{loc_w}}  {_clip(f.message, msg_w)}"
            )
    else:
        lines.append("No findings.")
    for e in result.errors:
        lines.append(f"ERROR     {visible(e.path)}: {visible(e.message)}")
    for note in result.notes:
        lines.append(f"note: {visible(note)}")
    counts = result.counts()
    summary = ", ".join(f"{n} {sev}" for sev, n in reversed(counts.items()) if n)
    lines.append("")
    lines.append(
        f"{visible(result.target)}: {result.stats.files} files, {result.stats.bytes / 1e6:.1f} MB scanned in "
        f"{result.stats.seconds:.2f}s; {len(result.findings)} findings"
        + (f" ({summary})" if summary else "")
        + (f"; {len(result.errors)} errors" if result.errors else "")
    )
    return "\n".join(lines) + "\n"
