"""The CLI commands of analysis: ``pystrument worker`` and ``pystrument analyze``.

``pystrument worker`` recycles its process like the original's Celery
workers (``max_tasks_per_child=100``): it supervises a child worker that
exits after ``--recycle-after`` jobs and starts a fresh one, so memory a
job leaves behind (a large tree, a leaking provider client) is returned to
the system. ``--once`` and ``--max-jobs`` run in the process itself. A
child whose supervisor died finishes the job in hand and exits.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from typing import Any

__all__ = ["add_commands", "cmd_analyze", "cmd_worker"]


def cmd_worker(args: argparse.Namespace) -> int:
    from pystrument_lab.analysis.worker import run_worker
    from pystrument_lab.store import connect

    queues = _queues(args.queues)
    if args.recycle_after and not args.once and args.max_jobs is None:
        return _supervise(args, queues)
    stopping = False

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    parent = os.getppid()

    def orphaned() -> bool:
        return bool(args.supervised) and os.getppid() != parent

    run_worker(
        connect(),
        once=args.once,
        max_jobs=args.max_jobs,
        lease=args.lease,
        time_limit=args.time_limit,
        poll=args.poll,
        worker_id=args.worker_id,
        queues=queues,
        should_stop=lambda: stopping or orphaned(),
    )
    return 0


def _queues(value: str | None) -> list[str] | None:
    from pystrument_lab.analysis.jobs import QUEUES

    if not value:
        return None
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = sorted(set(names) - set(QUEUES))
    if unknown:
        raise SystemExit(f"unknown queue {', '.join(unknown)}; choose from {', '.join(QUEUES)}")
    return names


def _supervise(args: argparse.Namespace, queues: list[str] | None) -> int:
    """Run child workers of ``--recycle-after`` jobs each, one after the other, until stopped."""
    command = [
        sys.executable,
        "-m",
        "pystrument_lab.cli",
        "worker",
        "--supervised",
        "--max-jobs",
        str(args.recycle_after),
        "--lease",
        str(args.lease),
        "--time-limit",
        str(args.time_limit),
        "--poll",
        str(args.poll),
    ]
    if queues:
        command += ["--queues", ",".join(queues)]
    if args.worker_id:
        command += ["--worker-id", args.worker_id]
    child: subprocess.Popen[bytes] | None = None
    stopping = False

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.terminate()  # it finishes the job in hand, then exits

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while not stopping:
        child = subprocess.Popen(command)
        code = child.wait()
        if stopping:
            break
        if code != 0:
            print(f"worker: the worker process exited with {code}", file=sys.stderr, flush=True)
            return code
        print(f"worker: recycled after {args.recycle_after} jobs", flush=True)
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    from pystrument_lab.analysis import analyze
    from pystrument_lab.analysis.report import render_analysis_text

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
    worker.add_argument(
        "--recycle-after",
        type=int,
        default=100,
        help="replace the worker process after this many jobs (0: never)",
    )
    worker.add_argument("--supervised", action="store_true", help=argparse.SUPPRESS)
    worker.add_argument(
        "--queues",
        default=None,
        help="comma-separated queues to take jobs from: analysis, batch (default: both)",
    )
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
