"""The ``pystrument`` command: run the services and manage projects from a shell."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from panel_apps.cli import add_commands as add_dashboard_commands
from pystrument_lab.analysis import add_commands as add_analysis_commands
from pystrument_lab.console import command_store, print_json
from pystrument_lab.demo import add_commands as add_demo_commands
from pystrument_lab.doctor import CHECKS as DOCTOR_CHECKS
from pystrument_lab.errors import PystrumentError
from pystrument_lab.reports.commands import add_commands as add_report_commands
from pystrument_lab.up import cmd_status, cmd_up

Handler = Callable[[argparse.Namespace], int]


def _settings() -> Any:
    from pystrument_lab.settings import get_settings

    return get_settings()


# -- store -----------------------------------------------------------------


def _embedded() -> Any:
    from pystrument_lab.embedded import EmbeddedServer

    settings = _settings()
    return EmbeddedServer(settings.home, port=settings.store_port)


def cmd_store(args: argparse.Namespace) -> int:
    settings = _settings()
    if settings.mongodb_url and args.action != "status":
        print("PYSTRUMENT_MONGODB_URL is set: the store is external and not managed here.")
        return 0
    server = _embedded()
    if args.action == "start":
        print(server.ensure_running())
    elif args.action == "stop":
        print("stopped" if server.stop() else "not running")
    else:
        if settings.mongodb_url:
            from pystrument_lab.store import Store

            store = Store(settings.mongodb_url, database=settings.database)
            status = {"external": True, "healthy": store.ping()}
        else:
            status = server.status()
        print_json(status)
        return 0 if status.get("healthy", status.get("running")) else 1
    return 0


# -- projects --------------------------------------------------------------


def cmd_projects_create(args: argparse.Namespace) -> int:
    project = command_store().create_project(
        args.name,
        framework=args.framework,
        description=args.description,
        sampling_rate=args.sampling_rate,
    )
    if args.json:
        print_json(project)
    else:
        print(f"created project {project['name']!r}\nproject key: {project['project_key']}")
    return 0


def cmd_projects_list(args: argparse.Namespace) -> int:
    items, _ = command_store().list_projects(page=1, size=1000)
    if args.json:
        print_json(items)
        return 0
    if not items:
        print("no projects yet: pystrument projects create NAME --framework flask")
    for project in items:
        print(
            f"{project['name']:<30} {project['framework']:<8} {project['status']:<9} "
            f"{project['project_key']}"
        )
    return 0


def cmd_admin_token(_: argparse.Namespace) -> int:
    from pystrument_lab.settings import admin_token

    print(admin_token(_settings()))
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from pystrument_lab import doctor

    settings = _settings()
    if args.create_indexes:
        from pystrument_lab.store import Store, resolve_url

        store = Store(resolve_url(settings), database=settings.database)
        store.ensure_indexes()
        store.close()
    findings = doctor.diagnose(
        settings, collector_url=args.collector_url, only=set(args.check) if args.check else None
    )
    if args.json:
        print_json(doctor.as_json(findings))
    else:
        print(doctor.render(findings))
    return 1 if any(finding.status == "problem" for finding in findings) else 0


# -- services --------------------------------------------------------------


def cmd_collector(args: argparse.Namespace) -> int:
    import uvicorn

    settings = _settings()
    uvicorn.run(
        "collector.app:app",
        host=args.host or settings.collector_host,
        port=args.port or settings.collector_port,
        workers=args.workers,
        log_level=settings.log_level.lower(),
        # behind a load balancer or reverse proxy, trust its X-Forwarded-* headers
        forwarded_allow_ips=args.forwarded_allow_ips,
    )
    return 0


# -- parser ----------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pystrument",
        description="Pystrument: performance analysis for Python web services.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = commands.add_parser(
        "up", help="start the store, collector and other services; Ctrl-C stops them"
    )
    up.set_defaults(handler=cmd_up)
    status = commands.add_parser(
        "status", help="print the banner of the running `pystrument up` again (URLs, token, key)"
    )
    status.set_defaults(handler=cmd_status)

    collector = commands.add_parser(
        "collector", help="run the collector (FastAPI) in the foreground"
    )
    collector.add_argument(
        "--host", help="address to bind (default PYSTRUMENT_COLLECTOR_HOST or 127.0.0.1)"
    )
    collector.add_argument(
        "--port", type=int, help="port (default PYSTRUMENT_COLLECTOR_PORT or 8000)"
    )
    collector.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes on this port (uvicorn's --workers); they share the store, "
        "so rate limit, idempotency and metrics stay exact",
    )
    collector.add_argument(
        "--forwarded-allow-ips",
        metavar="IPS",
        help="comma-separated addresses of the load balancer whose X-Forwarded-For is trusted",
    )
    collector.set_defaults(handler=cmd_collector)

    store = commands.add_parser("store", help="start, stop or inspect the embedded store")
    store.add_argument("action", choices=["start", "stop", "status"], help="what to do")
    store.set_defaults(handler=cmd_store)

    projects = commands.add_parser("projects", help="create and list projects")
    project_commands = projects.add_subparsers(
        dest="projects_command", required=True, metavar="ACTION"
    )
    create = project_commands.add_parser("create", help="create a project and print its SDK key")
    create.add_argument("name", help="unique project name")
    create.add_argument(
        "--framework", default="other", choices=["flask", "django", "fastapi", "other"]
    )
    create.add_argument("--description", default="")
    create.add_argument(
        "--sampling-rate", type=float, default=0.3, help="fraction of requests profiled (0-1)"
    )
    create.add_argument("--json", action="store_true", help="print the project as JSON")
    create.set_defaults(handler=cmd_projects_create)
    listing = project_commands.add_parser("list", help="list projects")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=cmd_projects_list)

    doctor = commands.add_parser(
        "doctor", help="say what is wrong: store, collector, workers, projects, analysis, disk"
    )
    doctor.add_argument("--json", action="store_true", help="print the findings as JSON")
    doctor.add_argument(
        "--collector-url",
        metavar="URL",
        help="the collector to check (default http://PYSTRUMENT_COLLECTOR_HOST:PORT)",
    )
    doctor.add_argument(
        "--create-indexes", action="store_true", help="create missing indexes first"
    )
    doctor.add_argument(
        "--check",
        action="append",
        choices=[name for name in DOCTOR_CHECKS if name != "store"],
        help="run only this check (and the store's); repeatable, as in a container health check",
    )
    doctor.set_defaults(handler=cmd_doctor)

    token = commands.add_parser("admin-token", help="print the admin token the collector expects")
    token.set_defaults(handler=cmd_admin_token)
    add_analysis_commands(commands)
    add_report_commands(commands)
    add_demo_commands(commands)
    add_dashboard_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except PystrumentError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
