"""A new user's first cells in a kernel: a new empty store, an unknown project, no data yet.

The kernel runs with a fresh PYSTRUMENT_HOME and no MongoDB URL, so opening the
Lab starts the embedded store itself; every message names what it found.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from pystrument_lab.embedded import EmbeddedServer, free_port
from pystrument_lab.reports import ensure_kernel

pytestmark = pytest.mark.slow

CELLS: list[tuple[str, str]] = [
    ("load", "%load_ext pystrument_lab\nimport json, warnings"),
    ("connect", "lab = %pystrument connect"),
    ("unknown", "%pystrument records shop-api"),
    ("create", "project = lab.store.create_project('shop-api', framework='flask', "
               "sampling_rate=0.25)\nprint(project['project_key'])"),
    ("endpoints", "ep = %pystrument endpoints shop-api --range 1h\nprint(len(ep))"),
    ("records", "rs = %pystrument records shop-api --range 2h\nprint(len(rs))"),
    ("other", "lab.store.create_project('billing', framework='django')\n"
              "%pystrument records shop-ap"),
    ("compare", "with warnings.catch_warnings(record=True) as caught:\n"
                "    warnings.simplefilter('always')\n"
                "    table = lab.compare_versions('shop-api', '1.0', '9.9')\n"
                "print(json.dumps([[w.category.__name__, str(w.message)] for w in caught] + [len(table)]))"),
    ("again", "import pystrument_lab\n"
              "with warnings.catch_warnings(record=True) as caught:\n"
              "    warnings.simplefilter('always')\n"
              "    pystrument_lab.connect()\n"
              "print(json.dumps([w.category.__name__ for w in caught]))"),
]  # fmt: skip


@pytest.fixture(scope="module")
def fresh_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("fresh-home")
    port = free_port()
    yield {"home": home, "port": port, "collector_port": free_port()}
    EmbeddedServer(home, port=port).stop()


@pytest.fixture(scope="module")
def outputs(fresh_home: dict[str, Any]) -> dict[str, Any]:
    notebook = nbformat.v4.new_notebook()
    for name, source in CELLS:
        cell = nbformat.v4.new_code_cell(source)
        cell.metadata["name"] = name
        if name in ("unknown", "other"):
            cell.metadata["tags"] = ["raises-exception"]
        notebook.cells.append(cell)
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYSTRUMENT_MONGODB_URL", "MONGODB_URL", "PYSTRUMENT_DATABASE")
    }
    env |= {
        "PYSTRUMENT_HOME": str(fresh_home["home"]),
        "PYSTRUMENT_STORE_PORT": str(fresh_home["port"]),
        "PYSTRUMENT_COLLECTOR_PORT": str(fresh_home["collector_port"]),
    }
    client = NotebookClient(
        notebook,
        kernel_name=ensure_kernel(),
        timeout=120,
        resources={"metadata": {"path": str(fresh_home["home"])}},
    )
    client.execute(env=env)
    nbformat.write(notebook, Path(fresh_home["home"]) / "guidance.ipynb")
    return {cell.metadata["name"]: cell.outputs for cell in notebook.cells}


def _stream(outputs: list[Any], name: str) -> str:
    return "".join(o.get("text", "") for o in outputs if o.get("name") == name)


def test_what_a_new_user_is_told(outputs: dict[str, Any], fresh_home: dict[str, Any]) -> None:
    url = f"mongodb://127.0.0.1:{fresh_home['port']}"
    data_dir = EmbeddedServer(fresh_home["home"], port=fresh_home["port"]).data_dir
    assert _stream(outputs["connect"], "stderr").strip() == (
        f"started the embedded store at {url} (data in {data_dir}): it was not running and it "
        "is EMPTY, no project. If your data is elsewhere, stop it with `pystrument store stop` "
        f"and set PYSTRUMENT_HOME (now {fresh_home['home']}) to the home `pystrument up` runs "
        "with, or PYSTRUMENT_MONGODB_URL to your MongoDB."
    )

    [error] = outputs["unknown"]
    assert error["ename"] == "PystrumentUsageError"
    assert error["evalue"] == (
        f"no project named or keyed 'shop-api': the store at {url} (database pystrument) has "
        "no project at all. Is it the store your collector writes to? (PYSTRUMENT_MONGODB_URL, "
        "else the embedded store of PYSTRUMENT_HOME; `pystrument status` shows the running one)"
    )

    key = _stream(outputs["create"], "stdout").strip()
    collector = f"http://127.0.0.1:{fresh_home['collector_port']}"
    checks = (
        f"  - the app's SDK sends this project's key ({key[:6]}…, PROJECT_KEY)\n"
        "  - its sampling rate is 25%: only sampled requests become records (the metrics "
        "count every request)\n"
        f"  - the SDK's API_ENDPOINT reaches the collector (here {collector}); "
        "`python -m performance_monitor check` where the app runs sends a test record"
    )
    assert _stream(outputs["endpoints"], "stdout").strip() == "0"
    assert _stream(outputs["endpoints"], "stderr").strip() == (
        "project shop-api has no requests in the last 1h; it never had data. Check that:\n" + checks
    )
    assert _stream(outputs["records"], "stderr").strip() == (
        "project shop-api has no sampled requests in the last 2h; it never had data. "
        "Check that:\n" + checks
    )

    [error] = outputs["other"]
    assert error["evalue"] == (
        f"no project named or keyed 'shop-ap' in the store at {url} (database pystrument); "
        "its projects: shop-api, billing"
    )

    *warned, rows = json.loads(_stream(outputs["compare"], "stdout"))
    assert rows == 0
    assert warned == [
        [
            "NoDataWarning",
            "project shop-api has no requests of version 1.0, 9.9 in the last 30d; versions "
            "with data: none. (Versions come from the SDK's app_version; a longer range looks "
            "further back.)",
        ]
    ]
    # the store is running now: opening it again says nothing
    assert json.loads(_stream(outputs["again"], "stdout")) == []
