"""``sas forensics``: verify, prove, check-proof, timeline, incidents, query, export, report.

LEDGER is a sqlite or jsonl ledger, a captured log, or a folder of them (CloudWatch exports, .gz included).
It may be omitted: then ``$SAS_LEDGER`` or ``[forensics] ledger`` of the configuration names it (a store spec
such as ``sqlite:ledger.db`` is accepted as well as a path). Exit codes: 0 ok, 1 tampered (verify; with
``--strict`` also any event no signed checkpoint covers, or a record that does not parse) or a proof that
fails (check-proof), 2 unusable input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from sas.display import visible
from sas.errors import InputError

EXIT_OK, EXIT_TAMPERED, EXIT_ERROR = 0, 1, 2


def register(sub: Any) -> None:
    p = sub.add_parser("forensics", help="verify the tamper-evident ledger and investigate what happened")
    fs = p.add_subparsers(dest="forensics_command", metavar="SUBCOMMAND", parser_class=type(p))
    p.set_defaults(handler=lambda _args: _usage(p))

    v = fs.add_parser("verify", help="check every event, checkpoint signature, consistency and the anchor")
    v.add_argument("ledger", nargs="?", metavar="LEDGER")
    v.add_argument("--pub", metavar="KEY", help="public key (sas keygen .pub, or NAME+HASH+KEY); default: the ledger's")
    v.add_argument("--anchor", metavar="STORE", help="anchor store: sqlite:PATH or redis://HOST:PORT/DB")
    v.add_argument("--format", "-f", choices=["text", "json"], default="text")
    v.add_argument(
        "--strict",
        action="store_true",
        help="also exit 1 unless every event is covered by a signed checkpoint and every record parses (a writer "
        "killed before signing, a removed or corrupted checkpoint, an unsigned forged sub-log: each only a warning "
        "otherwise)",
    )
    v.set_defaults(handler=_verify)

    pr = fs.add_parser("prove", help="write a C2SP tlog-proof that one event is in a signed checkpoint")
    pr.add_argument("args", nargs="+", metavar="[LEDGER] EVENT_ID")
    pr.add_argument("--output", "-o", metavar="FILE", help="write the proof here (default: stdout)")
    pr.set_defaults(handler=_prove)

    cp = fs.add_parser("check-proof", help="check a tlog-proof offline with the public key alone")
    cp.add_argument("proof", metavar="PROOF")
    cp.add_argument("--pub", metavar="KEY", required=True)
    cp.add_argument("--event", metavar="FILE", help="the event's canonical bytes, if not taken from the proof")
    cp.set_defaults(handler=_check_proof)

    t = fs.add_parser("timeline", help="one ordered timeline merged from every instance's sub-log")
    t.add_argument("ledger", nargs="?", metavar="LEDGER")
    _filters(t)
    t.add_argument("--format", "-f", choices=["table", "jsonl"], default="table")
    t.set_defaults(handler=_timeline)

    i = fs.add_parser("incidents", help="group correlated detections into incidents")
    i.add_argument("ledger", nargs="?", metavar="LEDGER")
    _filters(i)
    i.add_argument("--window", type=float, default=300.0, metavar="SECONDS", help="quiet gap that ends an incident")
    i.add_argument("--format", "-f", choices=["text", "json"], default="text")
    i.set_defaults(handler=_incidents)

    q = fs.add_parser("query", help="run SQL over the events with DuckDB (table: events)")
    q.add_argument("args", nargs="+", metavar="[LEDGER] SQL")
    q.add_argument("--format", "-f", choices=["table", "json", "csv"], default="table")
    q.set_defaults(handler=_query)

    e = fs.add_parser("export", help="export events as jsonl, OCSF or Timesketch JSONL")
    e.add_argument("ledger", nargs="?", metavar="LEDGER")
    _filters(e)
    e.add_argument("--format", "-f", choices=["jsonl", "ocsf", "timesketch"], default="jsonl")
    e.add_argument("--output", "-o", metavar="FILE")
    e.set_defaults(handler=_export)

    r = fs.add_parser("report", help="write one self-contained HTML page: verification, incidents, timeline")
    r.add_argument("ledger", nargs="?", metavar="LEDGER")
    r.add_argument("--html", required=True, metavar="OUT")
    r.add_argument("--pub", metavar="KEY")
    r.add_argument("--anchor", metavar="STORE")
    r.add_argument("--window", type=float, default=300.0, metavar="SECONDS")
    r.set_defaults(handler=_report)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_ERROR


def _filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--client", metavar="C")
    p.add_argument("--request", metavar="R")
    p.add_argument("--instance", metavar="I", help="instance id (or part of it, or of the sub-log origin)")
    p.add_argument("--since", metavar="T", help="epoch seconds, ISO 8601, or an age (15m, 2h, 7d)")
    p.add_argument("--until", metavar="T")
    p.add_argument("--detections", action="store_true", help="only alerts and blocks")


def _ledger_path(given: str | None) -> str:
    spec = given or os.environ.get("SAS_LEDGER")
    if not spec:
        from sas.config import discover, load_file, section

        found = discover()
        if found is not None:
            value = section(load_file(found), "forensics").get("ledger")
            spec = value if isinstance(value, str) else None
    if not spec or spec == "stdout":
        raise InputError("no ledger given: pass LEDGER (a sqlite or jsonl ledger, or a captured log) or set SAS_LEDGER")
    kind, sep, rest = spec.partition(":")
    return rest if sep and kind in ("sqlite", "jsonl") else spec


def _load(given: str | None) -> Any:
    from sas.forensics.ledger import load_ledger

    return load_ledger(_ledger_path(given))


def _keys(pub: str | None) -> Any:
    if not pub:
        return None
    from sas.events.checkpoint import load_verifier

    return [load_verifier(pub)]


def _anchor(spec: str | None) -> Any:
    if not spec:
        return None
    from sas.events.anchor import open_anchor

    if spec.startswith("sqlite:") and not Path(spec[7:]).is_file():
        raise InputError(f"anchor store {spec[7:]} not found")
    return open_anchor(spec)


def _selected(args: argparse.Namespace, ledger: Any) -> Any:
    from sas.forensics.timeline import filter_events, ledger_events, parse_time

    return filter_events(
        ledger_events(ledger),
        client=args.client,
        request=args.request,
        instance=args.instance,
        since=parse_time(args.since) if args.since else None,
        until=parse_time(args.until) if args.until else None,
        detections_only=args.detections,
    )


def _verify(args: argparse.Namespace) -> int:
    from sas.forensics.verify import verify_ledger

    ledger = _load(args.ledger)
    anchor = _anchor(args.anchor)
    try:
        report = verify_ledger(ledger, _keys(args.pub), anchor)
    finally:
        if anchor is not None:
            anchor.close()
    if args.format == "json":
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
    else:
        sys.stdout.write(format_verify(report))
        if args.strict and not report.tampered and not report.complete:
            sys.stdout.write(
                f"INCOMPLETE (--strict): {report.verified_events} of {report.events} events verified, "
                f"{report.unparsed} unparsed record(s)\n"
            )
    return EXIT_TAMPERED if report.tampered or (args.strict and not report.complete) else EXIT_OK


def format_verify(report: Any) -> str:
    checkpoints = sum(s.checkpoints for s in report.logs)
    key = ", ".join(k.split("+")[0] + "+" + k.split("+")[1] for k in report.keys)
    lines = [
        f"{report.source}: {report.events} events in {len(report.logs)} sub-log(s), {checkpoints} checkpoints; "
        f"key {key} ({'given' if report.key_source == 'given' else 'from the ledger itself'})"
        + ("; anchor checked" if report.anchor_checked else "")
    ]
    if report.tampered:
        first = report.first_problem
        lines.append(f"TAMPERED: {', '.join(report.kinds)}; first bad event {visible(first.event_id)}")
        for p in report.problems:
            span = "" if p.last_seq is None or p.last_seq == p.first_seq else f"..{p.last_seq}"
            tag = " (explained)" if p.explained else ""
            lines.append(f"  {p.kind:<13} {visible(p.event_id)}{span}{tag}: {visible(p.message)}")
    else:
        verified = sum(s.verified_size for s in report.logs)
        lines.append(f"OK: {verified} of {report.events} events match signed checkpoints")
        for p in report.problems:
            lines.append(f"  {p.kind} {visible(p.event_id)}..{p.last_seq}: {visible(p.message)}")
    lines.extend(f"warning: {visible(w)}" for w in report.warnings)
    return "\n".join(lines) + "\n"


def _prove(args: argparse.Namespace) -> int:
    from sas.forensics.proofs import make_proof

    if len(args.args) > 2:
        raise InputError("usage: sas forensics prove [LEDGER] EVENT_ID")
    ledger_arg, event_id = (args.args[0], args.args[1]) if len(args.args) == 2 else (None, args.args[0])
    text = make_proof(_load(ledger_arg), event_id)
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise InputError(f"cannot write {args.output}: {exc.strerror or exc}") from None
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def _check_proof(args: argparse.Namespace) -> int:
    from sas.events.checkpoint import load_verifier
    from sas.forensics.proofs import check_proof

    try:
        text = Path(args.proof).read_text(encoding="utf-8")
        event = Path(args.event).read_bytes().rstrip(b"\n") if args.event else None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read proof: {exc}") from None
    result = check_proof(text, load_verifier(args.pub), event)
    print(("OK: " if result.ok else "FAILED: ") + result.message)
    if result.ok and result.event is not None:
        sys.stdout.write(json.dumps(result.event, sort_keys=True) + "\n")
    return EXIT_OK if result.ok else EXIT_TAMPERED


def _timeline(args: argparse.Namespace) -> int:
    from sas.forensics.timeline import format_timeline

    events = _selected(args, _load(args.ledger))
    if args.format == "jsonl":
        for e in events:
            sys.stdout.write(json.dumps(e.to_dict(), sort_keys=True, default=str) + "\n")
    else:
        sys.stdout.write(format_timeline(events))
    return EXIT_OK


def _incidents(args: argparse.Namespace) -> int:
    from sas.forensics.incidents import find_incidents, format_incidents

    incidents = find_incidents(_selected(args, _load(args.ledger)), window=args.window)
    if args.format == "json":
        sys.stdout.write(json.dumps([i.to_dict() for i in incidents], indent=2) + "\n")
    else:
        sys.stdout.write(format_incidents(incidents))
    return EXIT_OK


def _query(args: argparse.Namespace) -> int:
    from sas.forensics.query import format_result, run_query
    from sas.forensics.timeline import ledger_events

    if len(args.args) > 2:
        raise InputError('usage: sas forensics query [LEDGER] "SQL"')
    ledger_arg, sql = (args.args[0], args.args[1]) if len(args.args) == 2 else (None, args.args[0])
    result = run_query(ledger_events(_load(ledger_arg)), sql)
    sys.stdout.write(format_result(result, args.format))
    return EXIT_OK


def _export(args: argparse.Namespace) -> int:
    from sas.forensics.export import export_lines

    lines = export_lines(_selected(args, _load(args.ledger)), args.format)
    if args.output:
        try:
            with open(args.output, "w", encoding="utf-8") as fh:
                for line in lines:
                    fh.write(line + "\n")
        except OSError as exc:
            raise InputError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    else:
        for line in lines:
            sys.stdout.write(line + "\n")
    return EXIT_OK


def _report(args: argparse.Namespace) -> int:
    from sas.forensics.incidents import find_incidents
    from sas.forensics.report import render_report
    from sas.forensics.timeline import ledger_events
    from sas.forensics.verify import verify_ledger

    ledger = _load(args.ledger)
    anchor = _anchor(args.anchor)
    try:
        verification = verify_ledger(ledger, _keys(args.pub), anchor) if (args.pub or ledger.keys) else None
    finally:
        if anchor is not None:
            anchor.close()
    events = ledger_events(ledger)
    page = render_report(ledger.source, events, find_incidents(events, window=args.window), verification)
    try:
        Path(args.html).write_text(page, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write {args.html}: {exc.strerror or exc}") from None
    status = "not verified" if verification is None else ("TAMPERED" if verification.tampered else "verified")
    print(f"wrote {args.html} ({len(events)} events, ledger {status})", file=sys.stderr)
    return EXIT_OK
