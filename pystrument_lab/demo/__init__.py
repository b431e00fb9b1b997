"""The demo shop: an instrumented FastAPI service with planted bottlenecks and its traffic driver.

- :mod:`~pystrument_lab.demo.app`: the service, its two versions and the
  functions where the bottlenecks live;
- :mod:`~pystrument_lab.demo.shopdb`: its SQLite database;
- :mod:`~pystrument_lab.demo.traffic`: the deterministic request mix;
- :mod:`~pystrument_lab.demo.server`: both versions behind one loopback port;
- :mod:`~pystrument_lab.demo.runner`: :func:`run_demo` and the endless mode.

Importing this package is cheap; FastAPI, SQLAlchemy and the SDK load when a
demo runs.

>>> from pystrument_lab.demo import run_demo
>>> run_demo("http://127.0.0.1:8000", requests_per_version=40)  # doctest: +SKIP
{'project_key': '...', 'project': 'demo-shop', 'versions': ['1.0', '1.1'], ...}
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
from typing import Any

__all__ = ["add_commands", "run_demo"]


def run_demo(api_endpoint: str, *, requests_per_version: int, store: Any = None) -> dict[str, Any]:
    """Drive ``requests_per_version`` requests through versions 1.0 and 1.1, wait until stored.

    ``store`` is a :class:`pystrument_lab.store.Store` (default: ``connect()``),
    used to find or create the ``demo-shop`` project and to see the
    collector's writes. Returns ``{project_key, project, versions,
    requests_per_version, collector}``.
    """
    from pystrument_lab.demo.runner import run_demo as _run_demo

    return _run_demo(api_endpoint, requests_per_version=requests_per_version, store=store)


def cmd_demo(args: argparse.Namespace) -> int:
    from pystrument_lab.demo import runner

    endpoint = args.api_endpoint or runner.default_api_endpoint()
    if args.requests is not None:
        result = runner.run_demo(endpoint, requests_per_version=args.requests)
        if args.json:
            print(json.dumps(result, indent=2))
        else:
            print(
                f"sent {result['requests_per_version']} requests to each of versions "
                f"{', '.join(result['versions'])} of {result['project']!r}\n"
                f"project key: {result['project_key']}"
            )
        return 0
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    port = args.port or runner.demo_port()
    runner.run_until_stopped(endpoint, port=port, rate=args.rate, stop=stop)
    return 0


def add_commands(commands: Any) -> None:
    """Register ``pystrument demo`` on an argparse sub-parsers object."""
    demo = commands.add_parser(
        "demo",
        help="run the instrumented demo shop and drive traffic through it",
        description=(
            "Serve the demo shop (versions 1.0 and 1.1) instrumented with the SDK and drive "
            "traffic to the collector at PYSTRUMENT_API_ENDPOINT. With --requests N, send N "
            "requests per version, wait until they are stored and exit; otherwise run until "
            "stopped."
        ),
    )
    demo.add_argument("--requests", type=int, metavar="N", help="requests per version, then exit")
    demo.add_argument("--json", action="store_true", help="print the result as JSON")
    demo.add_argument("--api-endpoint", help="collector URL (default PYSTRUMENT_API_ENDPOINT)")
    demo.add_argument("--port", type=int, help="port when running until stopped (default 8050)")
    demo.add_argument(
        "--rate", type=float, default=2.0, help="requests a second when running until stopped"
    )
    demo.set_defaults(handler=cmd_demo)
