"""Markdown report, for pull-request comments and job summaries."""

from __future__ import annotations

from sas.scan.findings import ScanResult


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render(result: ScanResult) -> str:
    counts = result.counts()
    out = [f"# Serverless AI Shield scan: `{result.target}`", ""]
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
                f"| {f.severity.value} | `{f.rule_id}` | `{_cell(str(f.location))}` | "
                f"**{_cell(f.title)}**: {_cell(f.message)} |"
            )
        out.append("")
    if result.errors:
        out += ["## Errors", ""] + [f"- `{_cell(e.path)}`: {_cell(e.message)}" for e in result.errors] + [""]
    if result.notes:
        out += ["## Notes", ""] + [f"- {_cell(n)}" for n in result.notes] + [""]
    return "\n".join(out)
