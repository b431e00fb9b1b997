"""``pystrument-run``: the command line, the child's PYTHONPATH and the start-up hook."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from performance_monitor.bootstrap import BOOTSTRAP_DIR
from performance_monitor.launcher import child_environment

from tests.utils.sink import Sink

LAUNCHER = str(Path(sys.executable).parent / "pystrument-run")
PROBE = """\
import sys
import performance_monitor.autoinstrument as hook
import flask, fastapi, starlette.applications, django.core.handlers.base as base
print(hook._installed)
print(getattr(flask.Flask.__call__, "__pystrument_patched__", False))
print(getattr(fastapi.FastAPI.build_middleware_stack, "__pystrument_patched__", False))
print(getattr(starlette.applications.Starlette.build_middleware_stack, "__pystrument_patched__", False))
print(getattr(base.BaseHandler.load_middleware, "__pystrument_patched__", False))
print(getattr(sys.modules.get("sitecustomize"), "FROM_THE_SITE", None))
"""


def _run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYSTRUMENT_", "PERFORMANCE_MONITOR_", "PYTHONPATH"))
    }
    base["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{base.get('PATH', '')}"
    return subprocess.run(
        [LAUNCHER, *args],
        cwd=tmp_path,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_usage_and_unknown_command(tmp_path: Path) -> None:
    assert _run([], tmp_path).returncode == 2
    helped = _run(["--help"], tmp_path)
    assert helped.returncode == 0 and "pystrument-run gunicorn" in helped.stdout
    missing = _run(["no-such-command-here"], tmp_path, PERFORMANCE_MONITOR_PROJECT_KEY="pk")
    assert missing.returncode == 127
    assert "command not found: no-such-command-here" in missing.stderr


def test_child_path_gets_the_bootstrap_once() -> None:
    once = child_environment({"PYTHONPATH": f"/a{os.pathsep}/b"})
    twice = child_environment(once)
    assert twice["PYTHONPATH"].split(os.pathsep) == [BOOTSTRAP_DIR, "/a", "/b"]
    assert child_environment({})["PYTHONPATH"] == BOOTSTRAP_DIR


def test_hook_patches_each_framework_and_keeps_the_site_hook(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text("FROM_THE_SITE = 'ran'\n")
    done = _run(
        ["python", "-c", PROBE],
        tmp_path,
        PERFORMANCE_MONITOR_PROJECT_KEY="pk",
        PYTHONPATH=str(site),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True", "True", "True", "True", "ran"]
    assert "unmonitored" not in done.stderr


def test_invalid_configuration_warns_once_and_runs_unhooked(tmp_path: Path) -> None:
    (tmp_path / "performance_config.json").write_text('{"project_key": "pk", "batch_size": 0}')
    done = _run(["python", "-c", PROBE], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[:5] == ["False"] * 5
    warnings = [line for line in done.stderr.splitlines() if "unmonitored" in line]
    assert len(warnings) == 1 and "batch_size must be an integer in [1, 10000]" in warnings[0]


def test_a_flask_app_wrapped_explicitly_is_left_alone(sink: Sink) -> None:
    from flask import Flask
    from performance_monitor import autoinstrument
    from performance_monitor.flask import PerformanceWSGIWrapper

    app = Flask("wrapped")
    original = app.wsgi_app
    wrapper = PerformanceWSGIWrapper(
        app, {"project_key": "pk", "api_endpoint": sink.url, "remote_config": False}
    )
    autoinstrument._instrument_flask_app(app)
    assert app.extensions["performance_monitor"] is wrapper
    assert app.wsgi_app == original  # no second monitor inside the wrapper
