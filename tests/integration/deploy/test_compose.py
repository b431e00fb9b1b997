"""docker-compose.yml and the Dockerfile, checked without Docker.

Every command a service or a health check runs must parse with the
``pystrument`` CLI's own argparse (and its sub-command's ``--help`` must
run), every environment variable must be one the settings read, with a
value they accept, and the Dockerfile must install what ``make up``
installs and copy everything those distributions are built from.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import tomllib
import yaml

from pystrument_lab.cli import build_parser
from pystrument_lab.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
#: Read outside the settings object: the AI configuration file and key (analysis/config.py).
OTHER_VARIABLES = {"PYSTRUMENT_AI_CONFIG", "OPENAI_API_KEY"}
_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?([-?])([^}]*))?\}")


def interpolate(value: str) -> str:
    """What compose puts in place of ``${VAR:-default}`` / ``${VAR:?message}`` with VAR unset."""

    def replace(match: re.Match[str]) -> str:
        name, kind, rest = match.groups()
        if kind == "?":
            return f"value-of-{name.lower()}"  # compose refuses to start without it
        return rest or ""

    return _INTERPOLATION.sub(replace, value)


def setting_variables() -> set[str]:
    names: set[str] = set()
    for info in Settings.model_fields.values():
        alias = info.validation_alias
        names.update(getattr(alias, "choices", None) or ([alias] if alias else []))
    return {name for name in names if isinstance(name, str)}


def pystrument_commands() -> list[tuple[str, list[str]]]:
    found = []
    for name, service in SERVICES.items():
        for command in (service.get("command"), service.get("healthcheck", {}).get("test")):
            if isinstance(command, str):
                command = shlex.split(command)
            if command and command[0] == "CMD":
                command = command[1:]
            if command and command[0] == "pystrument":
                found.append((name, [interpolate(part) for part in command]))
    return found


def test_one_service_per_process_type_on_the_official_mongo_image() -> None:
    assert SERVICES["mongo"]["image"].split(":")[0] == "mongo"
    commands = {name: command for name, command in pystrument_commands()}
    kinds = {
        SERVICES[name]["command"][1]
        for name in SERVICES
        if name != "mongo" and SERVICES[name]["command"][0] == "pystrument"
    }
    assert kinds == {"collector", "worker", "scheduler", "dashboard"}
    assert set(commands) == set(SERVICES) - {"mongo"}
    queues = {
        tuple(SERVICES[name]["command"][3].split(","))
        for name in SERVICES
        if SERVICES[name]["command"][1] == "worker"
    }
    assert queues == {("analysis",), ("batch",)}
    for name, service in SERVICES.items():
        assert "healthcheck" in service, name
        for volume in service.get("volumes", []):
            assert volume.split(":")[0] in COMPOSE["volumes"], (name, volume)
        for dependency in service.get("depends_on", {}):
            assert dependency in SERVICES
        if name != "mongo":
            assert service["build"] == "."
            assert (ROOT / "Dockerfile").is_file()


@pytest.mark.parametrize(("service", "command"), pystrument_commands())
def test_each_command_is_a_real_pystrument_command(service: str, command: list[str]) -> None:
    parser = build_parser()
    try:
        args = parser.parse_args(command[1:])
    except SystemExit as exc:  # argparse's way of refusing
        pytest.fail(f"{service}: {shlex.join(command)} is refused (exit {exc.code})")
    assert args.command == command[1]
    assert callable(args.handler)
    help_run = subprocess.run(
        [sys.executable, "-m", "pystrument_lab.cli", command[1], "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert help_run.returncode == 0, help_run.stderr
    # spelled out in full: argparse would also take an abbreviation
    for option in (part.split("=")[0] for part in command[2:] if part.startswith("--")):
        assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", help_run.stdout), (
            service,
            option,
        )


@pytest.mark.parametrize("service", [name for name in SERVICES if name != "mongo"])
def test_each_environment_variable_is_read_by_the_settings(service: str) -> None:
    environment = {
        name: interpolate(str(value)) for name, value in SERVICES[service]["environment"].items()
    }
    unknown = set(environment) - setting_variables() - OTHER_VARIABLES
    assert not unknown, f"{service}: nothing reads {sorted(unknown)}"
    settings = Settings.model_validate(
        {name: value for name, value in environment.items() if name not in OTHER_VARIABLES}
    )
    assert settings.mongodb_url == "mongodb://mongo:27017/?replicaSet=rs0"
    assert settings.admin_token == "value-of-pystrument_admin_token"


def _pip_targets(line: str) -> set[str]:
    """The distributions a ``pip install`` line installs, without extras and ``-e``."""
    words = shlex.split(line.split("pip install", 1)[1].split("&&")[0].replace("\\\n", " "))
    return {re.sub(r"\[.*\]$", "", word) for word in words if not word.startswith("-")}


def test_the_dockerfile_installs_what_make_up_installs() -> None:
    makefile = (ROOT / "Makefile").read_text()
    make_line = next(
        line for line in makefile.splitlines() if "pip install" in line and "-e" in line
    )
    dockerfile = (ROOT / "Dockerfile").read_text()
    docker_line = next(part for part in dockerfile.split("RUN ")[1:] if "pip install" in part)
    assert _pip_targets(make_line) == {"./sdk", "."}
    assert _pip_targets(docker_line) == _pip_targets(make_line)

    copied = {
        line.split()[1].rstrip("/") for line in dockerfile.splitlines() if line.startswith("COPY")
    } | {
        word
        for line in dockerfile.splitlines()
        if line.startswith("COPY")
        for word in line.split()[1:-1]
    }
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    needed = {"pyproject.toml", project["project"]["readme"], "sdk"}
    needed |= {
        pattern.rstrip("*")
        for pattern in project["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    for patterns in project["tool"]["setuptools"]["data-files"].values():
        needed |= {pattern.split("/")[0] for pattern in patterns}
    assert needed <= copied, sorted(needed - copied)
    for source in copied:
        assert (ROOT / source).exists(), source
