"""``sas keygen`` and ``sas manifest build|verify``: the signed integrity manifest from the command line.

The library is :mod:`sas.integrity` (also used by the runtime at cold start); this module only parses
arguments, runs the scan whose summary the manifest embeds, and prints. Exit codes: 0 verified, 1 the tree
or signature differs (every differing file named), 2 unusable input (missing path, malformed manifest, bad key).
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
from sas.taxonomy import Severity

EXIT_OK, EXIT_MISMATCH = 0, 1
# sas.integrity.ALGORITHMS, spelled out so that building the parser (every ``sas`` command) does not import the
# library; tests/cli checks the two agree.
ALGORITHMS = ("sha256", "blake2b", "blake3")


def register(sub: Any) -> None:
    keygen = sub.add_parser("keygen", help="create an Ed25519 key pair for signing manifests")
    keygen.add_argument("--out", required=True, metavar="PREFIX", help="writes PREFIX.key (0600) and PREFIX.pub")
    keygen.set_defaults(handler=run_keygen)

    manifest = sub.add_parser("manifest", help="build or verify a signed integrity manifest")
    msub = manifest.add_subparsers(dest="manifest_command", metavar="ACTION", parser_class=type(manifest))
    build = msub.add_parser("build", help="hash every file under PATH, embed the scan summary, sign")
    build.add_argument("path", help="function folder, zip, or single file")
    build.add_argument("--key", required=True, help="Ed25519 private key (from sas keygen)")
    build.add_argument("--out", "-o", help="manifest file to write (default: PATH.manifest.json next to PATH)")
    build.add_argument("--algorithm", default="sha256", choices=ALGORITHMS, help="file digest")
    build.add_argument("--exclude", action="append", default=[], metavar="GLOB", help="leave matching files out")
    build.add_argument("--no-scan", action="store_true", help="do not run sas scan to embed its summary")
    build.add_argument(
        "--fail-on", metavar="SEVERITY", help="refuse to sign (exit 1) when the scan finds something at or above this"
    )
    build.add_argument("--workers", type=int, help="hashing threads (default: cores + 2)")
    build.set_defaults(handler=run_build)

    verify = msub.add_parser("verify", help="check PATH against a signed manifest")
    verify.add_argument("path", help="function folder, zip, or single file")
    verify.add_argument(
        "--manifest",
        "-m",
        help="the manifest file (default: PATH.manifest.json next to PATH, else PATH/sas-manifest.json)",
    )
    verify.add_argument("--pub", required=True, help="Ed25519 public key (from sas keygen)")
    verify.add_argument("--only", action="append", metavar="PATH", help="check only these files or folders")
    verify.add_argument("--format", "-f", default="text", choices=["text", "json"])
    verify.add_argument("--workers", type=int, help="hashing threads (default: cores + 2)")
    verify.set_defaults(handler=run_verify)
    manifest.set_defaults(handler=lambda _args: _usage(manifest))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_usage(sys.stderr)
    return 2


def run_keygen(args: argparse.Namespace) -> int:
    from sas import integrity  # ~10 ms with its hashing back-ends: only for these commands

    key = integrity.generate_private_key()
    key_path, pub_path = integrity.write_keypair(key, args.out)
    key_id = integrity.key_id_of_hex(integrity.public_key_hex(key.public_key()))
    print(f"wrote {key_path} (private, keep it out of the package) and {pub_path} (key id {key_id})")
    return EXIT_OK


def _scan_summary(path: str) -> dict[str, Any]:
    from sas import __version__
    from sas.scan.engine import scan

    result = scan(path)
    worst = result.worst()
    return {
        "tool": {"name": "serverless-ai-shield", "version": __version__},
        "files": result.stats.files,
        "bytes": result.stats.bytes,
        "findings": len(result.findings),
        "by_severity": result.counts(),
        "worst": worst.value if worst else None,
        "errors": len(result.errors),
    }


def _default_out(path: Path) -> Path:
    resolved = path.resolve()
    return resolved.parent / f"{resolved.name}.manifest.json"


def run_build(args: argparse.Namespace) -> int:
    from sas import integrity  # ~10 ms with its hashing back-ends: only for these commands

    root = Path(args.path)
    if not root.exists():
        raise InputError(f"no such file or directory: {args.path}")
    if args.workers is not None and args.workers < 1:
        raise InputError("--workers must be at least 1")
    key = integrity.load_private_key(args.key)
    out = Path(args.out) if args.out else _default_out(root)
    exclude = list(args.exclude)
    if root.is_dir():
        try:
            inside = out.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            inside = ""
        if inside:
            exclude.append(inside)  # the manifest cannot contain its own digest
        try:
            Path(args.key).resolve().relative_to(root.resolve())
            print(f"sas: warning: the private key {args.key} lies inside {args.path}", file=sys.stderr)
        except ValueError:
            pass
    threshold = None
    if args.fail_on:
        if args.no_scan:
            raise InputError("--fail-on needs the scan; drop --no-scan")
        try:
            threshold = Severity.parse(args.fail_on)
        except ValueError as exc:
            raise InputError(str(exc)) from None
    summary = None if args.no_scan else _scan_summary(args.path)
    if threshold is not None and summary is not None:
        worst = summary["worst"]
        if summary["errors"] or (worst is not None and Severity(worst) >= threshold):
            print(
                f"not signed: the scan found {summary['findings']} finding(s), worst {worst}, "
                f"{summary['errors']} error(s) (--fail-on {threshold.value}); run sas scan {args.path} for details",
                file=sys.stderr,
            )
            return EXIT_MISMATCH
    manifest = integrity.build_manifest(
        root, key, scan_summary=summary, algorithm=args.algorithm, exclude=exclude, workers=args.workers
    )
    manifest.write(out)
    totals = manifest.totals()
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(totals["by_kind"].items()))
    scanned = f"; scan: {summary['findings']} findings, worst {summary['worst'] or 'none'}" if summary else ""
    print(
        f"wrote {out}: {totals['files']} files ({kinds}), {totals['bytes']} bytes, "
        f"{manifest.algorithm}, key id {manifest.key_id}{scanned}"
    )
    return EXIT_OK


def _find_manifest(path: Path) -> Path:
    for candidate in (_default_out(path), path / "sas-manifest.json"):
        if candidate.is_file():
            return candidate
    raise InputError(f"no manifest given and none found at {_default_out(path)} (use --manifest FILE)")


def run_verify(args: argparse.Namespace) -> int:
    from sas import integrity  # ~10 ms with its hashing back-ends: only for these commands

    if not Path(args.path).exists():
        raise InputError(f"no such file or directory: {args.path}")
    if args.workers is not None and args.workers < 1:
        raise InputError("--workers must be at least 1")
    public_key = integrity.load_public_key(args.pub)
    manifest = args.manifest or _find_manifest(Path(args.path))
    report = integrity.verify_tree(args.path, manifest, public_key, paths=args.only, workers=args.workers)
    if args.format == "json":
        doc = {
            "ok": report.ok,
            "bad_signature": report.bad_signature,
            "changed": list(report.changed),
            "added": list(report.added),
            "removed": list(report.removed),
            "unreadable": list(report.unreadable),
            "files_checked": report.files_checked,
            "bytes_checked": report.bytes_checked,
            "seconds": round(report.seconds, 4),
            "key_id": report.key_id,
            "manifest_created": report.created,
        }
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    elif report.ok:
        print(
            f"ok: {report.files_checked} files, {report.bytes_checked} bytes match {os.fspath(manifest)} "
            f"(signed by key {visible(report.key_id)} at {visible(report.created)}) in {report.seconds:.2f}s"
        )
    else:
        for line in report.problems():
            print(visible(line))  # the package's own file names, chosen by whoever built it
        print(f"FAILED: {len(report.problems())} problem(s) against {os.fspath(manifest)}", file=sys.stderr)
    return EXIT_OK if report.ok else EXIT_MISMATCH
