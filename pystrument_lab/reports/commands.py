"""CLI for reports and scheduled work: ``reports run|list``, ``scheduler``, ``jobs``.

``pystrument jobs`` is the counterpart of the original's Celery inspect and
Flower: what is scheduled (with next run times), what runs now, which
reports and cleanups finished recently. It reads only the store
(``scheduler_state``, ``job_runs``, ``reports``), so it sees every scheduler
on every machine; :func:`pystrument_lab.reports.overview.job_overview` gives the
dashboard the same data.
"""

from __future__ import annotations

import argparse
import signal
import sys
from datetime import datetime
from typing import Any

from pystrument_lab.console import command_store, print_json
from pystrument_lab.reports.overview import job_overview

__all__ = ["add_commands"]


# -- handlers ----------------------------------------------------------------


def cmd_reports_run(args: argparse.Namespace) -> int:
    from pystrument_lab.reports.runner import run_report

    params = dict(item.split("=", 1) for item in args.param or [])
    report = run_report(
        args.project,
        args.template,
        args.start,
        args.end,
        report_type=args.report_type,
        params=params,
        store=command_store(),
        show_code=args.show_code,
    )
    if args.json:
        print_json(report)
    elif report["status"] == "completed":
        print(f"report {report['id']} completed in {report['duration']:.1f} s")
        for kind, path in (report.get("paths") or {}).items():
            print(f"  {kind}: {path}")
    else:
        print(f"report {report['id']} failed: {report['error']['message']}", file=sys.stderr)
        for path in (report.get("paths") or {}).values():
            print(f"  executed notebook: {path}", file=sys.stderr)
    return 0 if report["status"] == "completed" else 1


def cmd_reports_list(args: argparse.Namespace) -> int:
    from pystrument_lab.reports.runner import list_reports

    items = list_reports(
        command_store(), project=args.project, status=args.status, limit=args.limit
    )
    if args.json:
        print_json(items)
        return 0
    if not items:
        print("no reports yet: pystrument reports run --project NAME --template summary")
    for item in items:
        created = item["created_at"].strftime("%Y-%m-%d %H:%M")
        where = (item.get("paths") or {}).get("html") or (item.get("error") or {}).get(
            "message", ""
        )
        print(
            f"{item['id']}  {created}  {item.get('project_name') or item['project_key']:<20} "
            f"{item['template']:<11} {item['status']:<9} {where}"
        )
    return 0


def cmd_scheduler(args: argparse.Namespace) -> int:
    from pystrument_lab.reports.schedule import load_schedule
    from pystrument_lab.reports.scheduler import ReportScheduler

    schedule = load_schedule(args.schedule)
    runner = ReportScheduler(schedule, store=command_store(), blocking=not args.once)
    if args.once:
        results = runner.run_all_once()
        for spec, result in zip(schedule.jobs, results, strict=True):
            status = result["status"] if result else "taken by another scheduler"
            print(
                f"{spec.name}: {status}"
                + (f" ({result['error']})" if result and result.get("error") else "")
            )
        return 0 if all(r is None or r["status"] == "completed" for r in results) else 1

    stopped = False

    def stop(*_: Any) -> None:
        # A second signal (Ctrl-C, then the parent's SIGTERM) must not find the
        # scheduler already stopped; one before the start means do not start.
        nonlocal stopped
        stopped = True
        if runner.scheduler.running:
            runner.scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"scheduler: {len(schedule.jobs)} jobs from {schedule.source}", flush=True)
    if not stopped:
        runner.start()
    return 0


def cmd_jobs(args: argparse.Namespace) -> int:
    overview = job_overview(command_store(), recent=args.recent)
    if args.json:
        print_json(overview)
        return 0
    _print_overview(overview)
    return 0


def _fmt(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def _print_overview(overview: dict[str, Any]) -> None:
    alive = [s for s in overview["schedulers"] if s["alive"]]
    print(f"Schedulers: {len(alive)} alive" + "".join(f"\n  {s['name']}" for s in alive))
    print("\nScheduled:")
    if not overview["jobs"]:
        print("  nothing: start one with `pystrument scheduler`")
    for job in overview["jobs"]:
        what = job["template"] or job["task"]
        state = "RUNNING" if job["running"] else (job["last_status"] or "never run")
        print(
            f"  {job['name']:<20} {job['cron']:<15} {what:<11} next {_fmt(job['next_run'])}  "
            f"last {_fmt(job['last_fire'])} {state}"
        )
    running = overview["running"]
    print("\nRunning:")
    if not running["jobs"] and not running["reports"]:
        print("  nothing")
    for run in running["jobs"]:
        print(
            f"  job {run['job']} since {_fmt(run['started_at'])} on {run['host']} (pid {run['pid']})"
        )
    for report in running["reports"]:
        print(
            f"  report {report['id']} {report['template']} for "
            f"{report.get('project_name') or report['project_key']} since {_fmt(report['created_at'])}"
        )
    print("\nRecent runs:")
    for run in overview["recent_runs"]:
        detail = run.get("error") or run.get("reason") or ""
        if run.get("task") == "cleanup" and run.get("result"):
            removed = run["result"].get("removed", {})
            detail = ", ".join(f"{name} {count}" for name, count in removed.items() if count)
            detail = "removed " + (detail or "nothing")
        print(f"  {_fmt(run.get('scheduled_for'))}  {run['job']:<20} {run['status']:<9} {detail}")
    analysis = overview["analysis"]
    print("\nAnalysis queues (finished: last 24 h):")
    for name, counts in analysis["queues"].items():
        print(
            f"  {name:<10} pending {counts['pending']:<5} running {counts['running']:<5} "
            f"completed {counts['completed']:<6} failed {counts['failed']}"
        )
    workers = analysis["workers"]
    print("  workers busy: " + (", ".join(sorted(workers)) if workers else "none"))
    print("\nRecent reports:")
    for report in overview["recent_reports"]:
        detail = (report.get("paths") or {}).get("html") or (report.get("error") or {}).get(
            "message", ""
        )
        print(
            f"  {_fmt(report['created_at'])}  {report.get('project_name') or report['project_key']:<20} "
            f"{report['template']:<11} {report['status']:<9} {detail}"
        )


# -- parser ------------------------------------------------------------------


def add_commands(commands: Any) -> None:
    """Add ``reports``, ``scheduler`` and ``jobs`` to the ``pystrument`` parser."""
    reports = commands.add_parser("reports", help="run and list papermill reports")
    actions = reports.add_subparsers(dest="reports_command", required=True, metavar="ACTION")
    run = actions.add_parser("run", help="run a report notebook now")
    run.add_argument("--project", required=True, help="project name or key")
    run.add_argument("--template", default="summary", help="summary, regression or a .ipynb path")
    run.add_argument(
        "--start", default="-1d", help="ISO date or -1d, today, today-7d (default -1d)"
    )
    run.add_argument("--end", default="now", help="ISO date or now, today (default now)")
    run.add_argument("--report-type", help="report_type parameter (default: the template name)")
    run.add_argument(
        "--param", action="append", metavar="KEY=VALUE", help="extra notebook parameter"
    )
    run.add_argument("--show-code", action="store_true", help="keep code cells in the HTML")
    run.add_argument("--json", action="store_true", help="print the report document as JSON")
    run.set_defaults(handler=cmd_reports_run)
    listing = actions.add_parser("list", help="list reports, newest first")
    listing.add_argument("--project", help="only this project (name or key)")
    listing.add_argument("--status", choices=["running", "completed", "failed"])
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=cmd_reports_list)

    scheduler = commands.add_parser("scheduler", help="run scheduled reports and cleanup")
    scheduler.add_argument("--schedule", help="YAML schedule file (default: the packaged one)")
    scheduler.add_argument("--once", action="store_true", help="run every job once now and exit")
    scheduler.set_defaults(handler=cmd_scheduler)

    jobs = commands.add_parser("jobs", help="what is scheduled, running and recently finished")
    jobs.add_argument("--recent", type=int, default=10, help="how many finished runs to show")
    jobs.add_argument("--json", action="store_true", help="print JSON")
    jobs.set_defaults(handler=cmd_jobs)
