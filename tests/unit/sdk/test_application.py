"""Which frames are application code, and which node a tree names as its application root.

Call trees, exception tracebacks, SQL call sites and allocation sites share
one rule (``is_application_path``); the tests below check each of them on the
same paths.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pyinstrument
import pytest
from performance_monitor.core import application
from performance_monitor.core.allocations import group
from performance_monitor.core.application import SDK_DIR, application_root, is_application_path
from performance_monitor.core.callsite import application_caller
from performance_monitor.core.exceptions import exception_info
from performance_monitor.core.tree import flatten, session_tree
from pyinstrument import Profiler
from pyinstrument.session import Session

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


STDLIB = sysconfig.get_paths()["stdlib"]
STDLIB_ZIP = str(Path(STDLIB).parent / "python{}{}.zip".format(*sys.version_info[:2]))
SCRIPTS = sysconfig.get_paths()["scripts"]

#: (path, is application code)
PATHS = [
    (os.path.join(STDLIB, "json", "decoder.py"), False),
    (os.path.join(STDLIB_ZIP, "json", "decoder.py"), False),
    (pyinstrument.__file__, False),  # this interpreter's site-packages
    ("/srv/other-env/lib/python3.12/site-packages/flask/app.py", False),
    ("/usr/lib/python3/dist-packages/yaml/__init__.py", False),
    ("/srv/env/lib/python3.12/site-packages/lib.egg/mod.py", False),
    ("/srv/env/lib/python3.12/site-packages/deps.zip/mod.py", False),
    (os.path.join(SCRIPTS, "gunicorn"), False),  # a package's console script
    (os.path.join(SDK_DIR, "core", "monitor.py"), False),
    (os.path.join(SDK_DIR, "integrations", "sqlalchemy.py"), False),
    ("<frozen importlib._bootstrap>", False),
    ("<frozen runpy>", False),
    ("<string>", False),
    ("", False),
    ("/srv/service/bundle.zip/shop/views.py", True),  # an application module from a zip
    ("/srv/service/shop/views.py", True),
    ("/home/dev/project/app/models.py", True),
    (os.path.join(sys.prefix, "src", "app", "views.py"), True),
    (__file__, True),
]


@pytest.fixture
def fresh_rule() -> Iterator[None]:
    """The rule's cache emptied before and after: a test may change the library directories."""
    is_application_path.cache_clear()
    yield
    is_application_path.cache_clear()


def _code_in(path: str) -> dict[str, object]:
    """Functions compiled as if from ``path``: where it raises, and where a call site is read."""
    source = (
        "def fail():\n"
        "    raise ValueError('zorp')\n"
        "def site(caller, frame):\n"
        "    return caller(frame(), limit=1)\n"
    )
    namespace: dict[str, object] = {}
    exec(compile(source, path or "<unnamed>", "exec"), namespace)
    return namespace


def _traceback_says(path: str) -> bool:
    fail = _code_in(path)["fail"]
    try:
        fail()  # type: ignore[operator]
    except ValueError as error:
        frames = exception_info(error)["traceback"]
    innermost = frames[-1]
    assert innermost["function"] == "fail"
    return bool(innermost["is_application"])


def _call_site_says(path: str) -> bool:
    site = _code_in(path)["site"]
    found = site(application_caller, sys._getframe)  # type: ignore[operator]
    assert found is None or found["function"] == "site"
    return found is not None


def _tree_says(path: str) -> bool:
    stack = ["__call__\x00" + SDK_DIR + "/wsgi.py\x001", f"view\x00{path}\x007"]
    session = Session(
        frame_records=[(stack, 0.01)],  # type: ignore[arg-type]
        start_time=0.0,
        duration=0.01,
        min_interval=0.001,
        max_interval=0.001,
        sample_count=1,
        start_call_stack=[],
        target_description="t",
        cpu_time=0.0,
        sys_path=[],
        sys_prefixes=[],
    )
    root = session_tree(session)
    assert root is not None and root.children[0].function_name == "view"
    return root.children[0].is_application


def _allocation_says(path: str) -> bool:
    return (path, 7) in group([(0, 64, ((path, 7),))])


@pytest.mark.parametrize(("path", "expected"), PATHS)
def test_trees_tracebacks_call_sites_and_allocations_agree_on_application_code(
    path: str, expected: bool, fresh_rule: None
) -> None:
    assert is_application_path(path) is expected
    assert _tree_says(path) is expected
    assert _allocation_says(path) is expected
    if path:  # compiled code always has a file name
        assert _traceback_says(path) is expected
        assert _call_site_says(path) is expected


def test_an_application_under_the_interpreters_prefix_has_call_sites_and_tracebacks(
    monkeypatch: pytest.MonkeyPatch, fresh_rule: None
) -> None:
    # Python installed in /usr (a distribution's image), the application in /usr/src/app.
    for name in ("prefix", "base_prefix", "exec_prefix", "base_exec_prefix"):
        monkeypatch.setattr(sys, name, "/usr")
    monkeypatch.setattr(application, "_LIBRARY_DIRS", application._library_dirs("/usr"))
    version = "python{}.{}".format(*sys.version_info[:2])
    app = "/usr/src/app/shop/views.py"
    assert _call_site_says(app)
    assert _traceback_says(app)
    assert _tree_says(app)
    assert _allocation_says(app)
    for library in (
        f"/usr/lib/{version}/json/decoder.py",
        f"/usr/lib/{version}/site-packages/flask/app.py",
        "/usr/lib/python3/dist-packages/yaml/__init__.py",
        "/usr/bin/gunicorn",
    ):
        assert not _call_site_says(library), library
        assert not _traceback_says(library), library
        assert not _tree_says(library), library


def test_a_zipped_application_module_has_call_sites_and_tracebacks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr(
            "quillet.py",
            "import sys\n"
            "from performance_monitor.core.callsite import application_caller\n"
            "def query():\n"
            "    return application_caller(sys._getframe())\n"
            "def fail():\n"
            "    raise KeyError('quillet')\n",
        )
    monkeypatch.syspath_prepend(str(archive))
    module = importlib.import_module("quillet")
    try:
        assert module.__file__ == str(archive / "quillet.py")
        assert module.query() == {"function": "query", "file": module.__file__, "line": 4}
        try:
            module.fail()
        except KeyError as error:
            frames = exception_info(error)["traceback"]
        assert frames[-1] == {
            "function": "fail",
            "file": module.__file__,
            "line": 6,
            "is_application": True,
        }
        assert frames[0]["file"] == __file__ and frames[0]["is_application"]
    finally:
        sys.modules.pop("quillet", None)


def test_a_relative_path_is_read_from_the_working_directory(
    monkeypatch: pytest.MonkeyPatch, fresh_rule: None
) -> None:
    monkeypatch.chdir(STDLIB)
    assert not is_application_path(os.path.join("json", "decoder.py"))


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
