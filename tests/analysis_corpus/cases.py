"""The planted-bottleneck corpus, declared once: app, route, expected finding, its evidence.

``type``/``function`` is what a correct engine names first (``analysis_results.
bottleneck_analysis[0]``): the engine's bottleneck type and the application
function a developer would edit. ``evidence`` says what in the stored record
identifies the plant, so the expectation rests on what was measured, not on
names. A healthy endpoint (``type`` None) must raise no critical or high finding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Framework = Literal["flask", "django", "fastapi"]


@dataclass(frozen=True)
class Case:
    framework: Framework
    path: str
    type: str | None
    function: str | None
    evidence: str

    @property
    def name(self) -> str:
        return f"{self.framework}:{self.path}"

    @property
    def healthy(self) -> bool:
        return self.type is None


def _planted(framework: Framework, path: str, type_: str, function: str, evidence: str) -> Case:
    return Case(framework, path, type_, function, evidence)


def _healthy(framework: Framework, path: str, evidence: str) -> Case:
    return Case(framework, path, None, None, evidence)


CASES: tuple[Case, ...] = (
    # -- Flask under gunicorn (sync workers), SQLAlchemy on sqlite -----------------------
    _planted(
        "flask",
        "/f/orders",
        "database",
        "gather_rows",
        "statements: 40x SELECT books WHERE author_id = ? (ORM loop), call_site gather_rows",
    ),
    _planted(
        "flask",
        "/f/shelves",
        "database",
        "survey",
        "statements: 30x SELECT items WHERE shelf_id = ? (lazy relation), call_site survey",
    ),
    _planted(
        "flask",
        "/f/ledger",
        "database",
        "assemble",
        "statements: 40x SELECT title WHERE id = ?, call_site <listcomp> inside assemble",
    ),
    _planted(
        "flask",
        "/f/summary",
        "database",
        "reckon",
        "statements: 1x GROUP BY over 80k readings, >= 100 ms, call_site reckon",
    ),
    _planted(
        "flask",
        "/f/fold",
        "computation",
        "fold",
        "tree: fold's own time >= 60 % of the request; on CPU: cpu_time + run_queue_time close to wall",
    ),
    _planted(
        "flask",
        "/f/scan",
        "computation",
        "sift",
        "tree: sift's self time (regex findall in C) >= 60 %; on CPU: cpu_time + run_queue_time close to wall",
    ),
    _planted(
        "flask",
        "/f/export",
        "computation",
        "shape",
        "tree: shape -> json.encoder frames (indent: pure-Python encoder) >= 60 %; on CPU",
    ),
    _planted(
        "flask",
        "/f/relay",
        "io",
        "consult",
        "tree: consult -> httpx -> socket recv ~150 ms of wall; cpu_time << wall",
    ),
    _planted(
        "flask", "/f/pause", "io", "linger", "tree: linger -> time.sleep 120 ms; cpu_time << wall"
    ),
    _planted(
        "flask",
        "/f/vault",
        "io",
        "tend",
        "tree: tend's self time ~120 ms (with lock: waits without a frame); cpu << wall",
    ),
    _planted(
        "flask",
        "/f/bundle",
        "memory",
        "pack",
        "memory_usage: peak ~61 MB, delta ~0 (freed); tree: pack the only app frame",
    ),
    _planted(
        "flask",
        "/f/journal",
        "memory",
        "keep",
        "memory_usage: delta +51 MB per request; allocations: 51 MB at keep's line",
    ),
    _planted(
        "flask",
        "/f/page",
        "computation",
        "compose",
        "tree: compose -> jinja2 render frames >= 60 %; on CPU: cpu_time + run_queue_time close to wall",
    ),
    _planted(
        "flask",
        "/f/digest",
        "computation",
        "collate",
        "tree: collate's self time (36 identical sorted() calls in C) >= 60 %; on CPU",
    ),
    _planted(
        "flask",
        "/f/mesh",
        "computation",
        "nudge",
        "tree: nudge, called 100k times from mesh's loop, owns >= 60 %, mesh the rest; on CPU",
    ),
    _planted(
        "flask",
        "/f/tree",
        "computation",
        "descend",
        "tree: a 60-deep chain of descend (500 times) >= 60 % of the request; on CPU",
    ),
    _healthy("flask", "/f/ping", "one COUNT query; a few ms"),
    # -- Django under gunicorn (WSGI), the Django ORM on sqlite -------------------------
    _planted(
        "django",
        "/d/roster",
        "database",
        "muster",
        "statements: 40x SELECT team WHERE id = ? (lazy foreign key), call_site muster",
    ),
    _planted(
        "django",
        "/d/teams",
        "database",
        "line_up",
        "statements: 30x SELECT COUNT(*) players WHERE team_id = ?, call_site <listcomp>",
    ),
    _planted(
        "django",
        "/d/events",
        "database",
        "locate",
        "statements: 1x SELECT SUM WHERE label LIKE ? (iexact) over 400k rows, no index; "
        "call_site locate",
    ),
    _planted(
        "django",
        "/d/catalogue",
        "computation",
        "present",
        "tree: present -> django.template render frames >= 60 %; on CPU",
    ),
    _planted(
        "django",
        "/d/forecast",
        "io",
        "inquire",
        "tree: inquire -> urllib/http.client -> socket recv ~150 ms; cpu << wall",
    ),
    _planted(
        "django",
        "/d/stock",
        "database",
        "remember",
        "cache_metrics: 4 misses 0 hits; statements: 4x SUM over 100k stock, call_site remember",
    ),
    _planted(
        "django",
        "/d/dispatch",
        "io",
        "relay",
        "tree: relay -> queue.get -> threading wait ~120 ms; cpu << wall",
    ),
    _planted(
        "django",
        "/d/blend",
        "computation",
        "blend",
        "tree: blend's own time >= 60 % of the request; on CPU: cpu_time + run_queue_time close to wall",
    ),
    _healthy("django", "/d/health", "one indexed aggregate query; a few ms"),
    # -- FastAPI under uvicorn: async endpoints, and sync ones in the thread pool --------
    _planted(
        "fastapi",
        "/a/quote",
        "io",
        "canvass",
        "tree: [await] ~400 ms below canvass (httpx.AsyncClient), >= 60 % of the request",
    ),
    _planted(
        "fastapi", "/a/rest", "io", "drift", "tree: [await] 120 ms below drift (asyncio.sleep)"
    ),
    _planted(
        "fastapi",
        "/a/peek",
        "io",
        "glance",
        "tree: glance -> sync httpx -> socket recv ~150 ms blocking the loop; cpu << wall",
    ),
    _planted(
        "fastapi",
        "/a/batch",
        "io",
        "convene",
        "tree: [await] ~150 ms below convene: 6 jobs queued on a 1-thread executor",
    ),
    _planted(
        "fastapi",
        "/a/flatten",
        "computation",
        "flatten",
        "tree: flatten -> dataclasses.asdict frames >= 60 %; on CPU",
    ),
    _planted(
        "fastapi",
        "/a/members",
        "database",
        "enrol",
        "statements: 40x SELECT books.id WHERE author_id = ?, call_site enrol (sync "
        "endpoint in the thread pool)",
    ),
    _planted(
        "fastapi",
        "/a/hoard",
        "memory",
        "amass",
        "memory_usage: delta +51 MB per request; allocations: 51 MB at amass's line",
    ),
    _planted(
        "fastapi",
        "/a/inbox",
        "io",
        "receive",
        "tree: [await] 120 ms below receive (asyncio.Queue.get)",
    ),
    _healthy("fastapi", "/a/status", "returns a constant; under a millisecond"),
    _healthy("fastapi", "/a/item/7", "one primary-key SELECT in a sync endpoint"),
)

PLANTED = tuple(case for case in CASES if not case.healthy)
HEALTHY = tuple(case for case in CASES if case.healthy)
