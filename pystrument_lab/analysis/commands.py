"""The CLI commands of analysis: ``pystrument worker`` and ``pystrument analyze``."""

from __future__ import annotations

import argparse
import json
import signal
from typing import Any

__all__ = ["add_commands", "cmd_analyze", "cmd_worker"]


def cmd_worker(args: argparse.Namespace) -> int:
    from pystrument_lab.analysis.worker import run_worker
    from pystrument_lab.store import connect

    stopping = False

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    run_worker(
        connect(),
        once=args.once,
        max_jobs=args.max_jobs,
        lease=args.lease,
        time_limit=args.time_limit,
        poll=args.poll,
        worker_id=args.worker_id,
        should_stop=lambda: stopping,
    )
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    from pystrument_lab.analysis import analyze, render_analysis_text

    report = analyze(args.trace_id, service=args.service, model=args.model, fallback=args.fallback)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print(render_analysis_text(report))
    return 0 if report.get("status") == "completed" else 1


def add_commands(commands: Any) -> None:
    """Add ``worker`` and ``analyze`` to the ``pystrument`` sub-command parsers."""
    worker = commands.add_parser("worker", help="run analysis jobs queued in the store")
    worker.add_argument("--once", action="store_true", help="exit when no job is waiting")
    worker.add_argument("--max-jobs", type=int, default=None, help="exit after this many jobs")
    worker.add_argument("--lease", type=float, default=60.0, help="lease on a claimed job, seconds")
    worker.add_argument(
        "--time-limit", type=float, default=300.0, help="time limit per job, seconds"
    )
    worker.add_argument("--poll", type=float, default=0.5, help="seconds between polls when idle")
    worker.add_argument("--worker-id", default=None, help="name shown in task status")
    worker.set_defaults(handler=cmd_worker)

    analyze = commands.add_parser(
        "analyze", help="analyse one stored record now and print the result"
    )
    analyze.add_argument("trace_id", help="the record's trace id")
    analyze.add_argument("--service", default=None, help="AI service name, or 'rules'")
    analyze.add_argument("--model", default=None, help="override the service's model")
    analyze.add_argument(
        "--fallback",
        action="store_true",
        default=None,
        help="use the rules if the AI service fails",
    )
    analyze.add_argument("--json", action="store_true", help="print the whole result as JSON")
    analyze.set_defaults(handler=cmd_analyze)
