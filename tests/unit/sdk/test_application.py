"""Which frames are application code, and which node a tree names as its application root."""

from __future__ import annotations

import importlib
import json
import os
import sys
import sysconfig
import zipfile
from pathlib import Path

import pyinstrument
import pytest
from performance_monitor.core.application import SDK_DIR, application_root, is_application_path
from performance_monitor.core.tree import flatten, session_tree
from pyinstrument import Profiler

from collector.schemas.performance import RecordIn


def test_library_and_synthetic_frames_are_not_application_code(tmp_path: Path) -> None:
    assert not is_application_path(os.__file__)  # the standard library
    assert not is_application_path(json.__file__)
    assert not is_application_path(pyinstrument.__file__)  # this interpreter's site-packages
    assert not is_application_path(os.path.join(SDK_DIR, "core", "monitor.py"))
    assert not is_application_path("<frozen importlib._bootstrap>")
    assert not is_application_path("<built-in>")
    assert not is_application_path("")
    # Another environment's packages, or a --target install, wherever they are.
    assert not is_application_path("/srv/other-env/lib/python3.12/site-packages/flask/app.py")
    assert not is_application_path("/usr/lib/python3/dist-packages/yaml/__init__.py")
    assert not is_application_path(str(tmp_path / "site-packages" / "lib.egg" / "mod.py"))
    stdlib_zip = Path(sysconfig.get_paths()["stdlib"]).parent / "python{}{}.zip".format(
        *sys.version_info[:2]
    )
    assert not is_application_path(str(stdlib_zip / "json" / "decoder.py"))


def test_application_modules_are_application_code_wherever_they_live(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert is_application_path(__file__)
    assert is_application_path(str(tmp_path / "service" / "views.py"))
    # Under the interpreter's prefix but not in its library: still the application.
    assert is_application_path(os.path.join(sys.prefix, "src", "app", "views.py"))
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("zorp.py", "def wend():\n    return __file__\n")
    monkeypatch.syspath_prepend(str(archive))
    module = importlib.import_module("zorp")
    try:
        assert module.wend().startswith(str(archive))
        assert is_application_path(module.wend())
    finally:
        sys.modules.pop("zorp", None)


def _node(call_id: int, depth: int, duration: float, app: bool) -> dict[str, object]:
    return {"call_id": call_id, "depth": depth, "duration": duration, "is_application": app}


def test_application_root_is_the_shallowest_then_heaviest_application_node() -> None:
    nodes = [
        _node(0, 0, 1.0, False),
        _node(1, 1, 0.9, False),
        _node(2, 2, 0.2, True),
        _node(3, 3, 0.1, True),
        _node(4, 2, 0.6, True),
        _node(5, 1, 0.1, False),
    ]
    assert application_root(nodes) == 4
    assert application_root([_node(0, 0, 1.0, False)]) is None
    assert application_root([]) is None


def _knurl(seconds: float) -> None:
    import time

    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        pass


def _plinth() -> None:
    json.dumps(list(range(2000)))  # library code below the application frame
    _knurl(0.03)


def test_a_real_session_names_the_application_frame() -> None:
    profiler = Profiler(interval=0.0005, async_mode="disabled")
    profiler.start()
    _plinth()
    session = profiler.stop()
    root = session_tree(session)
    assert root is not None
    nodes = flatten(root, 200)
    by_id = {n["call_id"]: n for n in nodes}
    chosen = by_id[application_root(nodes)]  # type: ignore[index]
    # This test module's frames are the application; pytest's above them are not.
    assert chosen["file_path"] == __file__
    assert all(not n["is_application"] for n in nodes if n["depth"] < chosen["depth"]), (
        "an application frame above the root"
    )
    assert any(n["function_name"] == "_knurl" and n["is_application"] for n in nodes)


def test_collector_requires_the_application_root_to_name_a_node() -> None:
    base = {
        "trace_id": "t1",
        "timestamp": "2026-11-26T12:00:00Z",
        "request_info": {"method": "GET", "path": "/"},
        "response_info": {"status_code": 200},
        "performance_metrics": {"total_duration": 0.1},
        "function_calls": [
            {"call_id": 0, "function_name": "__call__", "duration": 0.1, "depth": 0},
            {
                "call_id": 1,
                "parent_call_id": 0,
                "function_name": "view",
                "duration": 0.1,
                "depth": 1,
            },
        ],
    }
    assert RecordIn.model_validate(base).application_root is None  # older SDKs
    assert RecordIn.model_validate({**base, "application_root": 1}).application_root == 1
    with pytest.raises(ValueError, match="application_root: no node 7"):
        RecordIn.model_validate({**base, "application_root": 7})
    with pytest.raises(ValueError, match="application_root"):
        RecordIn.model_validate({**base, "application_root": -1})
