"""Packaging and docs stay in step: pip and conda dependencies, the README configuration table."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[2]
# conda-forge spells a few distributions differently.
CONDA_NAMES = {"uvicorn": "uvicorn-standard", "pyyaml": "pyyaml"}


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_every_runtime_dependency_is_in_environment_yml() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {_name(item) for item in environment["dependencies"] if isinstance(item, str)}
    pip_section = next(
        item["pip"] for item in environment["dependencies"] if isinstance(item, dict)
    )
    pip = {_name(item) for item in pip_section if not item.startswith("-e")}
    editable = {item.split()[-1] for item in pip_section if item.startswith("-e")}
    missing = []
    for requirement in project["project"]["dependencies"]:
        name = _name(requirement)
        if name == "pystrument-sdk":
            if "./sdk" not in editable:
                missing.append(name)
            continue
        if CONDA_NAMES.get(name, name) not in conda and name not in pip:
            missing.append(name)
    assert missing == []
    assert "." in editable


def test_sdk_depends_on_pyinstrument_only() -> None:
    sdk = tomllib.loads((ROOT / "sdk" / "pyproject.toml").read_text())["project"]
    assert [_name(item) for item in sdk["dependencies"]] == ["pyinstrument"]
    assert sdk["requires-python"] == ">=3.10"


def test_python_floor_is_the_one_checked() -> None:
    """The SDK's declared floor is the version ruff and mypy check the code against."""
    sdk = tomllib.loads((ROOT / "sdk" / "pyproject.toml").read_text())["project"]
    tools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]
    floor = sdk["requires-python"].removeprefix(">=")
    major, minor = floor.split(".")
    assert tools["ruff"]["target-version"] == f"py{major}{minor}"
    assert tools["mypy"]["python_version"] == floor


def test_readme_configuration_table_documents_every_setting() -> None:
    from pystrument_lab.settings import Settings

    table = (ROOT / "README.md").read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    missing = [
        name
        for field in Settings.model_fields.values()
        for name in field.validation_alias.choices  # type: ignore[union-attr]
        if f"`{name}`" not in table
    ]
    assert missing == []
