"""``%pystrument`` and ``%%pystrument`` in a real IPython kernel, over data sent through the collector.

One generated notebook runs every command in a fresh ipykernel (nbclient), so
IPython state never leaks into other tests; each test reads the outputs of
its own cells.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import nbformat
import pytest
from nbclient import NotebookClient

from pystrument_lab.embedded import free_port
from pystrument_lab.reports import ensure_kernel
from pystrument_lab.store import Store
from tests.utils.factories import make_metric, make_record
from tests.utils.services import CollectorProcess

pytestmark = pytest.mark.slow

SEARCH = "/api/search"
USERS = "/api/users/{id}"
CELL_ROUTE = "/notebook/busy"


def _send(collector: CollectorProcess, key: str, path: str, body: dict[str, Any]) -> None:
    answer = httpx.post(collector.url + path, json=body, headers={"X-Project-Key": key}).json()
    assert answer["code"] == 0, answer


def _search_tree(total: float, ranking: float) -> list[dict[str, Any]]:
    def node(call_id: int, parent: int | None, name: str, duration: float, own: float) -> dict:
        return {
            "call_id": call_id, "parent_call_id": parent, "function_name": name,
            "file_path": "shop/search.py", "line_number": 10 * (call_id + 1),
            "duration": duration, "self_time": own, "depth": 0 if parent is None else call_id,
            "call_order": 0, "is_application": True,
        }  # fmt: skip

    return [
        node(0, None, "search_endpoint", total, total - ranking - 0.01),
        node(1, 0, "run_query", ranking + 0.01, 0.01),
        node(2, 1, "rank_results", ranking, ranking),
    ]


@pytest.fixture(scope="module")
def magic_store(mongo_url: str) -> Iterator[Store]:
    """The module's own database: the notebook runs once for all the tests."""
    name = "test_magics_" + uuid.uuid4().hex[:12]
    handle = Store(mongo_url, database=name)
    handle.ensure_indexes()
    yield handle
    handle.client.drop_database(name)
    handle.close()


@pytest.fixture(scope="module")
def seeded(
    magic_store: Store, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """/api/search slows from 50 ms (1.0) to 200 ms (1.1) in ``rank_results``; 12 sampled records."""
    collector = CollectorProcess(
        magic_store.url, magic_store.db.name, tmp_path_factory.mktemp("magics")
    )
    collector.start()
    try:
        project = collector.create_project("magics-" + uuid.uuid4().hex[:6], sampling_rate=1.0)
        yield _seed(collector, project)
    finally:
        collector.stop()


def _seed(collector: CollectorProcess, project: dict[str, Any]) -> dict[str, Any]:
    key = project["project_key"]
    now = datetime.now(timezone.utc)
    for version, typical in (("1.0", 0.05), ("1.1", 0.2)):
        durations = [typical * (0.9 + 0.2 * i / 59) for i in range(60)]
        metric = make_metric(
            durations, route=SEARCH, app_version=version, start=now - timedelta(minutes=20)
        )
        _send(
            collector,
            key,
            "/api/v1/performance/metrics",
            {"batch_id": uuid.uuid4().hex, "metrics": [metric]},
        )
    users = make_metric(
        [0.02] * 30, route=USERS, app_version="1.0", start=now - timedelta(minutes=10)
    )
    _send(
        collector,
        key,
        "/api/v1/performance/metrics",
        {"batch_id": uuid.uuid4().hex, "metrics": [users]},
    )
    records = []
    for index in range(8):
        version, ranking = ("1.0", 0.02) if index < 4 else ("1.1", 0.17)
        records.append(make_record(
            trace_id=f"search-{index}", path=SEARCH + "?q=lamp", route=SEARCH, duration=ranking + 0.03,
            app_version=version, timestamp=now - timedelta(minutes=index),
            nodes=_search_tree(ranking + 0.03, ranking),
        ))  # fmt: skip
    for index in range(4):
        records.append(make_record(
            trace_id=f"users-{index}", path="/api/users/7", route=USERS, duration=0.02,
            timestamp=now - timedelta(minutes=index), status=500 if index == 0 else 200,
        ))  # fmt: skip
    _send(collector, key, "/api/v1/performance/collect", {"records": records})
    return {"project": project["name"], "key": key}


CELLS: list[tuple[str, str]] = [
    ("load", "%load_ext pystrument_lab\nimport sys\n"
             "print(sorted(m for m in ('polars', 'bokeh', 'litellm', 'ipywidgets') if m in sys.modules))"),
    ("connect", "lab = %pystrument connect\nprint(repr(lab))"),
    ("help", "%pystrument records --help"),
    ("bad", "%pystrument frobnicate"),
    ("bad-args", "%pystrument records"),
    ("projects", "%pystrument projects"),
    ("records", "%config Pystrument.engine = 'pandas'\n"
                "df = %pystrument records {project} --route /api/search\n"
                "print(json.dumps({{'type': type(df).__module__.split('.')[0], 'rows': len(df), "
                "'ids': sorted(df.trace_id), 'versions': sorted(set(df.app_version))}}))"),
    ("records-filtered", "errors = %pystrument records {project} --status 500\n"
                         "slow = %pystrument records {project} --min-duration 150ms --version 1.1\n"
                         "print(json.dumps({{'errors': list(errors.trace_id), 'slow': len(slow)}}))"),
    ("endpoints", "%config Pystrument.engine = 'polars'\n"
                  "ep = %pystrument endpoints {project} --range 2h\n"
                  "print(json.dumps(ep.select('route', 'count').to_dicts()))\nep"),
    ("trends", "tr = %pystrument trends {project} --range 2h --bucket 10m --route /api/search\n"
               "print(json.dumps({{'buckets': len(tr), 'count': int(tr['count'].sum())}}))"),
    ("tree", "w = %pystrument tree search-5\n"
             "print(json.dumps({{'type': type(w).__name__, "
             "'functions': [n.function_name for n in w.state.visible()]}}))\nw"),
    ("merged-flame", "%pystrument tree {project} --route /api/search --version 1.1 --flame"),
    ("compare", "cmp = %pystrument compare {project} 1.0 1.1\n"
                "print(json.dumps(cmp.select('route', 'regression').to_dicts()))"),
    ("compare-route", "changes = %pystrument compare {project} 1.0 1.1 --route /api/search\n"
                      "print(json.dumps(list(changes['function'][:2])))"),
    ("cell", "%%pystrument --save {project} --route " + CELL_ROUTE + "\n"
             "def busy_cell_function(n):\n    total = 0\n    for i in range(n):\n"
             "        total += i * i % 7\n    return total\n\nbusy_cell_function(400_000)"),
    ("await", "%%pystrument\nimport asyncio\nawait asyncio.sleep(0)"),
    ("analyze", "report = %pystrument analyze search-5 --no-save\n"
                "print(json.dumps({{'status': report['status']}}))\nreport"),
    ("compare-unknown", "%pystrument compare {project} 1.0 9.9"),
    ("unreachable", "%pystrument connect mongodb://127.0.0.1:{closed_port}"),
]  # fmt: skip


@pytest.fixture(scope="module")
def executed(
    seeded: dict[str, Any], magic_store: Store, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    tmp_path = tmp_path_factory.mktemp("magics-notebook")
    store = magic_store
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("import json")]
    for name, source in CELLS:
        cell = nbformat.v4.new_code_cell(
            source.format(project=seeded["project"], closed_port=free_port())
        )
        cell.metadata["name"] = name
        if name in ("bad", "bad-args", "await", "compare-unknown", "unreachable"):
            cell.metadata["tags"] = ["raises-exception"]
        notebook.cells.append(cell)
    env = {**os.environ, "PYSTRUMENT_MONGODB_URL": store.url, "PYSTRUMENT_DATABASE": store.db.name}
    client = NotebookClient(
        notebook,
        kernel_name=ensure_kernel(),
        timeout=120,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute(env=env)
    nbformat.write(notebook, tmp_path / "magics.ipynb")  # kept for reading a failure
    return {cell.metadata["name"]: cell.outputs for cell in notebook.cells[1:]} | {"seeded": seeded}


def _text(outputs: list[Any], stream: str = "stdout") -> str:
    return "".join(o.get("text", "") for o in outputs if o.get("name") == stream)


def _json(outputs: list[Any]) -> Any:
    return json.loads(_text(outputs).strip().splitlines()[-1])


def _data(outputs: list[Any], mime: str) -> str:
    return "".join(o["data"][mime] for o in outputs if mime in o.get("data", {}))


def test_magics_in_a_kernel(executed: dict[str, Any], magic_store: Store) -> None:
    store = magic_store
    project = executed["seeded"]["project"]
    # Loading the extension is cheap: no DataFrame, plotting, widget or LLM library yet.
    assert _text(executed["load"]).strip() == "[]"
    assert store.db.name in _text(executed["connect"])

    usage = _text(executed["help"])
    assert "%pystrument records" in usage and "--min-duration" in usage
    [error] = executed["bad"]
    assert error["ename"] == "PystrumentUsageError"
    assert error["traceback"] == [f"UsageError: {error['evalue']}"]  # a message, not a stack
    assert error["evalue"].startswith("unknown sub-command 'frobnicate'; choose one of: connect")
    [error] = executed["bad-args"]
    assert "the following arguments are required: project" in error["evalue"]
    [error] = executed["await"]
    assert error["evalue"].startswith("%%pystrument cannot profile a cell with top-level `await`")

    assert project in _data(executed["projects"], "text/html")

    records = _json(executed["records"])
    assert records == {
        "type": "pandas",
        "rows": 8,
        "ids": [f"search-{i}" for i in range(8)],
        "versions": ["1.0", "1.1"],
    }
    assert _json(executed["records-filtered"]) == {"errors": ["users-0"], "slow": 4}

    endpoints = _json(executed["endpoints"])
    assert endpoints == [{"route": SEARCH, "count": 120}, {"route": USERS, "count": 30}]
    assert SEARCH in _data(executed["endpoints"], "text/html")
    trends = _json(executed["trends"])
    assert trends["buckets"] in (12, 13) and trends["count"] == 120  # 2 h of 10 min, edges aligned

    tree = _json(executed["tree"])
    assert tree["type"] == "CallTreeWidget"
    assert tree["functions"][:3] == ["search_endpoint", "run_query", "rank_results"]
    assert "application/vnd.jupyter.widget-view+json" in executed["tree"][-1]["data"]

    flame_text = _data(executed["merged-flame"], "text/plain")
    assert "4 requests merged" in flame_text and "rank_results" in flame_text
    assert "<iframe srcdoc=" in _data(executed["merged-flame"], "text/html")

    comparison = {row["route"]: row["regression"] for row in _json(executed["compare"])}
    assert comparison == {SEARCH: True, USERS: False}
    assert _json(executed["compare-route"])[0] == "rank_results"
    assert "slower" in _data(executed["compare-route"], "text/plain")

    assert _json(executed["analyze"])["status"] == "completed"
    assert "rank_results" in _data(executed["analyze"], "text/html")

    [error] = executed["compare-unknown"]
    assert error["evalue"].startswith(f"project {project} has no requests of version 9.9 ")
    assert "versions with data: 1.0, 1.1" in error["evalue"]
    [error] = executed["unreachable"]
    assert error["traceback"] == [f"UsageError: {error['evalue']}"]
    assert error["evalue"].startswith("cannot reach the store at mongodb://127.0.0.1:")
    assert "(connection refused)" in error["evalue"] and "pystrument up" in error["evalue"]
    assert "Topology" not in error["evalue"]


def test_saved_cell_is_a_record_with_the_cells_function(
    executed: dict[str, Any], magic_store: Store
) -> None:
    store = magic_store
    key = executed["seeded"]["key"]
    outputs = executed["cell"]
    assert "saved as record" in _text(outputs)
    assert "application/vnd.jupyter.widget-view+json" in outputs[-1]["data"]
    record = store.records.find_one({"project_key": key, "route": CELL_ROUTE})
    assert record is not None
    assert (record["method"], record["path"], record["status_code"]) == ("CELL", CELL_ROUTE, 200)
    assert record["total_duration"] > 0
    tree = store.call_trees.find_one({"project_key": key, "trace_id": record["trace_id"]})
    functions = [node["function_name"] for node in tree["nodes"]]
    assert "busy_cell_function" in functions
    busy = next(node for node in tree["nodes"] if node["function_name"] == "busy_cell_function")
    assert busy["duration"] > 0.5 * tree["nodes"][0]["duration"]  # where the cell spent its time
    assert tree["session"]  # pyinstrument's session, for the HTML view
