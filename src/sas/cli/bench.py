"""``sas bench detect``: the ML-detection scenario harness (needs numpy and scikit-learn: the ``ml`` extra)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from sas.errors import SasError


def register(sub: Any) -> None:
    bench = sub.add_parser("bench", help="evaluate the runtime detectors against attacks and benign traffic")
    bsub = bench.add_subparsers(dest="bench_command", metavar="SCENARIO")
    detect = bsub.add_parser("detect", help="extraction, probing and abuse attacks vs benign clients")
    detect.add_argument("--tasks", default="digits,breast_cancer", help="comma-separated: digits, breast_cancer")
    detect.add_argument("--budget", type=int, default=600, help="queries each attack may make (default 600)")
    detect.add_argument("--benign-clients", type=int, default=200)
    detect.add_argument("--redis", default="", metavar="URL", help="also run over --workers processes sharing Redis")
    detect.add_argument("--workers", type=int, default=8)
    detect.add_argument("--seeds", type=int, default=1, help="repeat every attack with this many seeds")
    detect.add_argument("--target-fpr", type=float, default=0.01, help="per-client false-positive target")
    detect.add_argument("--no-art", action="store_true", help="skip the ART attacks even if installed")
    detect.add_argument("--out", default="bench-detect.json", help="results file (JSON)")
    detect.add_argument("--quiet", "-q", action="store_true")
    detect.set_defaults(handler=run_detect)
    bench.set_defaults(handler=lambda args: _usage(bench))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def run_detect(args: argparse.Namespace) -> int:
    try:
        from sas.bench.detect import BenchConfig, run_bench, write_results
    except ImportError as exc:
        raise SasError(
            f"sas bench needs numpy and scikit-learn (pip install 'serverless-ai-shield[ml]'): {exc}"
        ) from exc
    tasks = tuple(t.strip() for t in args.tasks.split(",") if t.strip())
    unknown = [t for t in tasks if t not in ("digits", "breast_cancer")]
    if unknown:
        raise SasError(f"unknown task(s): {', '.join(unknown)} (expected digits, breast_cancer)")
    if args.redis:
        _check_redis(args.redis)
    cfg = BenchConfig(
        tasks=tasks,
        budget=args.budget,
        benign_clients=args.benign_clients,
        redis=args.redis,
        workers=args.workers,
        seeds=args.seeds,
        art=not args.no_art,
        target_fpr=args.target_fpr,
        log=(lambda _: None) if args.quiet else (lambda line: print(line, flush=True)),
    )
    results = run_bench(cfg)
    write_results(results, args.out)
    s = results["summary"]
    print(
        f"attacks detected (plain): {s['plain_detected']}/{s['plain_attacks']}; median queries to detection "
        f"(extraction): {s['median_queries_to_detection_extraction']}; worst benign client FPR "
        f"{s['max_benign_client_fpr']:.2%}; worst benign requests blocked {s['max_benign_request_block_rate']:.3%}"
    )
    if s["adaptive_missed"]:
        print(f"adaptive attacks that went undetected: {', '.join(s['adaptive_missed'])}")
    if s["adaptive_not_stopped"]:
        print(f"adaptive attacks never blocked (they win): {', '.join(s['adaptive_not_stopped'])}")
    print(f"ART attacks: {results['art']}; results written to {args.out} in {results['seconds']}s")
    return 0


def _check_redis(url: str) -> None:
    try:
        import redis

        redis.Redis.from_url(url, socket_timeout=1.0).ping()
    except Exception as exc:  # any failure: a one-line user error, not a traceback
        raise SasError(f"cannot reach redis at {url}: {exc}") from exc
