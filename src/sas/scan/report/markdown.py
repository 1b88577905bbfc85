"""Markdown report, for pull-request comments and job summaries."""

from __future__ import annotations

import re

from sas.display import visible
from sas.scan.findings import ScanResult

# file names and messages quote what was scanned: in a pull-request comment, markup in them must stay text
_MARKUP = re.compile(r"([\\`*_\[\]<>#!~])")


def _flat(text: str) -> str:
    return " ".join(visible(text).split())


def _cell(text: str) -> str:
    return _flat(text).replace("|", "\\|")


def _prose(text: str) -> str:
    return _MARKUP.sub(r"\\\1", _flat(text)).replace("|", "\\|")


def _code(text: str) -> str:
    """An inline code span that no backtick in ``text`` can close early."""
    cell = _cell(text)
    fence = "`" * (max((len(run) for run in re.findall("`+", cell)), default=0) + 1)
    pad = " " if cell.startswith("`") or cell.endswith("`") else ""
    return f"{fence}{pad}{cell}{pad}{fence}"


def render(result: ScanResult) -> str:
    counts = result.counts()
    out = [f"# Serverless AI Shield scan: {_code(result.target)}", ""]
    out.append(
        f"{result.stats.files} files, {len(result.findings)} findings: "
        + ", ".join(f"**{n}** {sev}" for sev, n in reversed(counts.items()) if n)
        if result.findings
        else f"{result.stats.files} files, no findings."
    )
    out.append("")
    if result.findings:
        out += ["| Severity | Rule | Location | Finding |", "| --- | --- | --- | --- |"]
        for f in result.findings:
            out.append(
                f"| {f.severity.value} | `{f.rule_id}` | {_code(str(f.location))} | "
                f"**{_prose(f.title)}**: {_prose(f.message)} |"
            )
        out.append("")
    if result.errors:
        out += ["## Errors", ""] + [f"- {_code(e.path)}: {_prose(e.message)}" for e in result.errors] + [""]
    if result.notes:
        out += ["## Notes", ""] + [f"- {_prose(n)}" for n in result.notes] + [""]
    return "\n".join(out)
