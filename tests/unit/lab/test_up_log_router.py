"""The log router of ``pystrument up``: files get every line, the console each warning once."""

from __future__ import annotations

import os
from pathlib import Path

from pystrument_lab.up import LogRouter, banner


def _route(tmp_path: Path, name: str, text: str) -> list[str]:
    shown: list[str] = []
    router = LogRouter(tmp_path / "logs", shown.append)
    read, write = os.pipe()
    os.write(write, text.encode())
    os.close(write)
    with os.fdopen(read, "rb") as stream:
        router.follow(name, stream)
        router.close()
    return shown


def test_repeated_warnings_show_once_and_access_lines_go_to_their_file(tmp_path: Path) -> None:
    output = (
        "Launching server at http://127.0.0.1:3000\n"
        "WARNING:bokeh.core.validation.check:W-1005 (FIXED_SIZING_MODE): 'fixed' sizing mode "
        "requires width and height: figure(id='p1041', ...)\n"
        'INFO:     127.0.0.1:51234 - "POST /api/v1/performance/collect HTTP/1.1" 200 OK\n'
        "WARNING:bokeh.core.validation.check:W-1005 (FIXED_SIZING_MODE): 'fixed' sizing mode "
        "requires width and height: figure(id='p2077', ...)\n"
        "404 GET /favicon.ico (127.0.0.1) 0.91ms\n"
        "WARNING:tornado.access:404 GET /robots.txt (127.0.0.1) 1.20ms\n"
        "ValueError: the schedule names no jobs\n"
    )
    shown = _route(tmp_path, "dashboard", output)
    log = tmp_path / "logs" / "dashboard.log"
    assert shown == [
        "[dashboard] WARNING:bokeh.core.validation.check:W-1005 (FIXED_SIZING_MODE): 'fixed' "
        f"sizing mode requires width and height: figure(id='p1041', ...)  (more in {log})",
        f"[dashboard] ValueError: the schedule names no jobs  (more in {log})",
    ]
    assert log.read_text().splitlines() == [
        "Launching server at http://127.0.0.1:3000",
        "WARNING:bokeh.core.validation.check:W-1005 (FIXED_SIZING_MODE): 'fixed' sizing mode "
        "requires width and height: figure(id='p1041', ...)",
        "WARNING:bokeh.core.validation.check:W-1005 (FIXED_SIZING_MODE): 'fixed' sizing mode "
        "requires width and height: figure(id='p2077', ...)",
        "ValueError: the schedule names no jobs",
    ]
    assert (tmp_path / "logs" / "access.log").read_text().splitlines() == [
        '[dashboard] INFO:     127.0.0.1:51234 - "POST /api/v1/performance/collect HTTP/1.1" 200 OK',
        "[dashboard] 404 GET /favicon.ico (127.0.0.1) 0.91ms",
        "[dashboard] WARNING:tornado.access:404 GET /robots.txt (127.0.0.1) 1.20ms",
    ]


def test_the_banner_names_every_url_the_token_and_the_demo_key() -> None:
    state = {
        "store": "mongodb://127.0.0.1:27027  (embedded)",
        "urls": {"collector": "http://127.0.0.1:8000", "dashboard": "http://127.0.0.1:3000"},
        "demo_key": "pk_demo",
        "logs": "/home/u/.pystrument/logs",
    }
    assert banner(state, admin_token="tok").splitlines() == [
        "Pystrument is up.",
        "  store:       mongodb://127.0.0.1:27027  (embedded)",
        "  collector:   http://127.0.0.1:8000",
        "  dashboard:   http://127.0.0.1:3000",
        "  admin token: tok",
        "  demo key:    pk_demo  (project demo-shop)",
        "  logs:        /home/u/.pystrument/logs",
    ]
