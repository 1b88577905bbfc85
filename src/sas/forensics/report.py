"""One self-contained HTML page for an investigation: verification status, incidents, timeline, breakdowns.

Everything is inline (CSS and SVG drawn here, no script, no CDN, no web font), so the page opens from a
ticket attachment or an air-gapped laptop and shows the same thing years later. Every value from the ledger
is HTML-escaped: the events hold attacker-controlled strings (client ids, request ids, details).
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime

from sas import __version__
from sas.forensics.incidents import Incident
from sas.forensics.timeline import ForensicEvent, iso
from sas.forensics.verify import VerifyReport

CATEGORY_COLOURS = {
    "model": "#d9480f",
    "function": "#5f3dc4",
    "infrastructure": "#1971c2",
    "supply-chain": "#2b8a3e",
    "iam": "#c2255c",
    "": "#868e96",
}
_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#212529;background:#f8f9fa}
main{max-width:1180px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 10px}
.sub{color:#495057}.cards{display:flex;gap:12px;flex-wrap:wrap;margin:16px 0}
.card{background:#fff;border:1px solid #dee2e6;border-radius:8px;padding:10px 16px;min-width:110px}
.card b{display:block;font-size:22px}.status{border-radius:8px;padding:14px 18px;margin:16px 0;color:#fff}
.ok{background:#2b8a3e}.bad{background:#c92a2a}.unknown{background:#868e96}
.status ul{margin:6px 0 0 18px;padding:0}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #dee2e6}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #e9ecef;vertical-align:top;font-size:13px}
th{background:#f1f3f5}code{font-size:12px;word-break:break-all}
svg{background:#fff;border:1px solid #dee2e6;border-radius:8px}
.legend span{display:inline-block;margin-right:14px;font-size:12px}
.legend i{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:4px;vertical-align:middle}
.two{display:grid;grid-template-columns:1fr 1fr;gap:16px}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _status_block(verification: VerifyReport | None) -> str:
    if verification is None:
        return '<div class="status unknown"><b>Not verified</b>: no key was given, the ledger was not checked.</div>'
    logs = len(verification.logs)
    verified = sum(s.verified_size for s in verification.logs)
    if verification.tampered:
        first = verification.first_problem
        items = "".join(
            f"<li><b>{_e(p.kind)}</b> {_e(p.event_id)}: {_e(p.message)}</li>"
            for p in verification.problems
            if not p.explained
        )
        head = f"TAMPERED ({_e(', '.join(verification.kinds))})"
        where = f" first bad event <code>{_e(first.event_id)}</code>" if first is not None else ""
        body = f"<div class='status bad'><b>{head}</b>{where}<ul>{items}</ul></div>"
    else:
        body = (
            f"<div class='status ok'><b>Verified</b>: {verified} of {verification.events} events in {logs} "
            f"sub-log(s) match signed checkpoints{' and the anchor' if verification.anchor_checked else ''}.</div>"
        )
    notes = [p for p in verification.problems if p.explained]
    extra = "".join(f"<li>{_e(p.kind)} {_e(p.event_id)}: {_e(p.message)}</li>" for p in notes)
    extra += "".join(f"<li>{_e(w)}</li>" for w in verification.warnings)
    return body + (f"<ul class='sub'>{extra}</ul>" if extra else "")


def _timeline_svg(events: Sequence[ForensicEvent], incidents: Sequence[Incident]) -> str:
    width, left, right = 1130, 170, 40
    detections = [e for e in events if e.is_detection]
    if not events:
        return "<p>No events.</p>"
    t0, t1 = events[0].time, events[-1].time
    span = max(t1 - t0, 1e-6)
    plot_w = width - left - right

    def x(t: float) -> float:
        return left + (t - t0) / span * plot_w

    counts = Counter(e.client_id or "(unknown)" for e in detections)
    rows = [c for c, _ in counts.most_common(10)]
    hist_h, row_h, top = 70, 26, 30
    height = top + hist_h + 20 + row_h * max(len(rows), 1) + 40
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="100%" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="timeline of events and detections">'
    ]
    # volume histogram: all events (grey) and detections (red) per bucket
    buckets = 120
    total = [0] * buckets
    flagged = [0] * buckets
    for e in events:
        b = min(buckets - 1, int((e.time - t0) / span * buckets))
        total[b] += 1
        if e.is_detection:
            flagged[b] += 1
    peak = max(total) or 1
    bw = plot_w / buckets
    parts.append(f'<text x="10" y="{top + 14}" font-size="12">events / detections</text>')
    for i in range(buckets):
        h = total[i] / peak * hist_h
        hd = flagged[i] / peak * hist_h
        bx = left + i * bw
        if h:
            parts.append(
                f'<rect x="{bx:.1f}" y="{top + hist_h - h:.1f}" width="{bw - 1:.1f}" height="{h:.1f}" fill="#ced4da"/>'
            )
        if hd:
            parts.append(
                f'<rect x="{bx:.1f}" y="{top + hist_h - hd:.1f}" width="{bw - 1:.1f}" height="{hd:.1f}" '
                'fill="#e03131"/>'
            )
    base = top + hist_h + 20
    row_of = {c: i for i, c in enumerate(rows)}
    for inc in incidents:
        if inc.client_id in row_of:
            y = base + row_of[inc.client_id] * row_h
            w = max(x(inc.end) - x(inc.start), 3)
            parts.append(
                f'<rect x="{x(inc.start):.1f}" y="{y + 2}" width="{w:.1f}" height="{row_h - 4}" rx="4" '
                f'fill="#ffe3e3" stroke="#ffa8a8"><title>{_e(inc.id)}</title></rect>'
            )
    for c, i in row_of.items():
        y = base + i * row_h
        parts.append(f'<text x="10" y="{y + row_h / 2 + 4}" font-size="12">{_e(c[:24])}</text>')
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y + row_h / 2}" y2="{y + row_h / 2}" stroke="#f1f3f5"/>'
        )
    for e in detections:
        row = row_of.get(e.client_id or "(unknown)")
        if row is None:
            continue
        cy = base + row * row_h + row_h / 2
        colour = CATEGORY_COLOURS.get(e.category, "#868e96")
        shape = "" if e.verdict == "block" else ' fill-opacity="0.35"'
        parts.append(
            f'<circle cx="{x(e.time):.1f}" cy="{cy:.1f}" r="4" fill="{colour}"{shape}>'
            f"<title>{_e(e.iso_time)} {_e(e.threat)} {_e(e.verdict)} {_e(e.event_id)}</title></circle>"
        )
    axis_y = base + row_h * max(len(rows), 1) + 16
    for k in range(6):
        t = t0 + span * k / 5
        label = iso(t)[11:23] if span < 60 else iso(t)[11:19]  # a short burst needs milliseconds to read
        parts.append(f'<text x="{x(t):.1f}" y="{axis_y}" font-size="11" text-anchor="middle">{_e(label)}</text>')
    parts.append(f'<text x="{left}" y="{axis_y + 16}" font-size="11">{_e(iso(t0))} .. {_e(iso(t1))} (UTC)</text>')
    parts.append("</svg>")
    legend = "".join(
        f'<span><i style="background:{c}"></i>{_e(k or "other")}</span>' for k, c in CATEGORY_COLOURS.items()
    )
    return "".join(parts) + f'<div class="legend">{legend}<span>solid: blocked, faint: alert</span></div>'


def _bars_svg(title: str, counts: Sequence[tuple[str, int]], colour_of: dict[str, str] | None = None) -> str:
    if not counts:
        return f"<h3>{_e(title)}</h3><p>None.</p>"
    row_h, width, label_w = 24, 550, 200
    peak = max(v for _, v in counts) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{row_h * len(counts) + 10}" '
        f'role="img" aria-label="{_e(title)}">'
    ]
    for i, (label, value) in enumerate(counts):
        y = 5 + i * row_h
        w = value / peak * (width - label_w - 60)
        colour = (colour_of or {}).get(label, "#e8590c")
        parts.append(f'<text x="6" y="{y + 16}" font-size="12">{_e(label[:28])}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 8}" fill="{colour}"/>')
        parts.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 16}" font-size="12">{value}</text>')
    parts.append("</svg>")
    return f"<h3>{_e(title)}</h3>" + "".join(parts)


def _incident_table(incidents: Sequence[Incident]) -> str:
    if not incidents:
        return "<p>No incidents: no detections.</p>"
    head = (
        "Incident",
        "Client",
        "Start (UTC)",
        "Duration",
        "Detections",
        "Severity",
        "Categories",
        "Threats",
        "Verdicts",
        "First / last event",
    )
    rows = []
    for inc in incidents:
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{c}</td>"
                for c in (
                    f"<b>{_e(inc.id)}</b>",
                    _e(inc.client_id),
                    _e(iso(inc.start)),
                    f"{inc.duration:.1f} s" if inc.duration < 10 else f"{inc.duration:.0f} s",
                    f"{inc.detections} ({inc.requests} requests)",
                    _e(inc.severity),
                    _e(", ".join(f"{k} {v}" for k, v in inc.categories)),
                    _e(", ".join(f"{k} {v}" for k, v in inc.threats)),
                    _e(", ".join(f"{k} {v}" for k, v in inc.verdicts)),
                    f"<code>{_e(inc.first_event)}</code><br><code>{_e(inc.last_event)}</code>",
                )
            )
            + "</tr>"
        )
    return "<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>" + "".join(rows) + "</table>"


def render_report(
    source: str,
    events: Sequence[ForensicEvent],
    incidents: Sequence[Incident],
    verification: VerifyReport | None,
) -> str:
    detections = [e for e in events if e.is_detection]
    by_category = Counter(e.category or "(none)" for e in detections).most_common()
    by_client = Counter(e.client_id or "(unknown)" for e in detections).most_common(10)
    span = f"{iso(events[0].time)} .. {iso(events[-1].time)}" if events else "no events"
    cards = [
        ("events", len(events)),
        ("detections", len(detections)),
        ("blocked", sum(1 for e in detections if e.verdict == "block")),
        ("incidents", len(incidents)),
        ("clients", len({e.client_id for e in events})),
        ("instances", len({e.instance_id for e in events})),
    ]
    now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>sas forensics: {_e(source)}</title><style>{_CSS}</style></head><body><main>"
        f"<h1>Forensic report</h1><div class='sub'>ledger <code>{_e(source)}</code> · {_e(span)} · "
        f"generated {now} by sas {_e(__version__)}</div>"
        + _status_block(verification)
        + "<div class='cards'>"
        + "".join(f"<div class='card'><b>{v}</b>{_e(k)}</div>" for k, v in cards)
        + "</div><h2>Incidents</h2>"
        + _incident_table(incidents)
        + "<h2>Timeline</h2>"
        + _timeline_svg(events, incidents)
        + "<h2>Detections</h2><div class='two'><div>"
        + _bars_svg("by category", by_category, {k: CATEGORY_COLOURS.get(k, "#868e96") for k, _ in by_category})
        + "</div><div>"
        + _bars_svg("by client (top 10)", by_client)
        + "</div></div></main></body></html>\n"
    )
