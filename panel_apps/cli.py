"""``pystrument dashboard``: serve the dashboard; behind a login unless bound to loopback."""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import socket
from typing import Any

LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}


def is_loopback(address: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost: only this machine can connect."""
    if address in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def server_options(
    address: str, port: int, extra_origins: list[str] | None = None
) -> dict[str, Any]:
    """pn.serve() keyword arguments for a bind address: security headers always, and off
    loopback a login with the admin token (constant-time, rate-limited per client)."""
    from panel_apps.security import SecurityHeaders, TokenAuthProvider

    hosts = {"localhost", "127.0.0.1", address}
    # ``transforms`` reaches tornado's Application: every response gets the CSP.
    options: dict[str, Any] = {"address": address, "port": port, "transforms": [SecurityHeaders]}
    if not is_loopback(address):
        from pystrument_lab.settings import admin_token

        token = admin_token()
        hosts |= {socket.gethostname(), socket.getfqdn()}
        options["auth_provider"] = TokenAuthProvider(token)
        options["cookie_secret"] = hashlib.sha256(
            ("pystrument-dashboard:" + token).encode()
        ).hexdigest()
    options["websocket_origin"] = sorted(f"{host}:{port}" for host in hosts) + list(
        extra_origins or []
    )
    return options


def serve_dashboard(
    address: str, port: int, *, extra_origins: list[str] | None = None, show: bool = False
) -> None:
    import panel as pn

    from panel_apps.app import create_app
    from panel_apps.reports import report_view
    from panel_apps.trace import pyinstrument_view

    options = server_options(address, port, extra_origins)
    where = f"http://{'127.0.0.1' if address in ('0.0.0.0', '::') else address}:{port}/"
    login = (
        " (log in with the admin token: pystrument admin-token)"
        if "auth_provider" in options
        else ""
    )
    print(f"Pystrument dashboard on {where}{login}", flush=True)
    pn.serve(
        {"/": create_app, "pyinstrument": pyinstrument_view, "report": report_view},
        title={
            "/": "Pystrument",
            "pyinstrument": "pyinstrument view",
            "report": "Pystrument report",
        },
        show=show,
        threaded=False,
        **options,
    )


def cmd_dashboard(args: argparse.Namespace) -> int:
    from pystrument_lab.settings import get_settings

    settings = get_settings()
    serve_dashboard(
        args.address or "127.0.0.1",
        args.port or settings.dashboard_port,
        extra_origins=args.allow_websocket_origin,
        show=args.show,
    )
    return 0


def add_commands(commands: Any) -> None:
    """Register ``dashboard`` on the ``pystrument`` CLI's sub-parsers."""
    parser = commands.add_parser(
        "dashboard", help="serve the Panel dashboard (login required off loopback)"
    )
    parser.add_argument("--port", type=int, help="port (default PYSTRUMENT_DASHBOARD_PORT or 3000)")
    parser.add_argument(
        "--address",
        help="address to bind (default 127.0.0.1; any other address requires the admin token)",
    )
    parser.add_argument(
        "--allow-websocket-origin", action="append", metavar="HOST:PORT",
        help="another host:port browsers reach the dashboard as (behind a proxy); repeatable",
    )  # fmt: skip
    parser.add_argument("--show", action="store_true", help="open a browser")
    parser.set_defaults(handler=cmd_dashboard)
