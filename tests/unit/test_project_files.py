"""Project files stay true: pre-commit runs what `./run_tests.sh quality` runs; doc links resolve."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
# Documents a reader of the repository starts from.
DOCUMENTS = [
    "README.md",
    "CONTRIBUTING.md",
    "CHANGELOG.md",
    "sdk/README.md",
    "benchmarks/README.md",
]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def quality_commands() -> list[list[str]]:
    script = (ROOT / "run_tests.sh").read_text()
    body = re.search(r"^quality\(\) \{\n(.*?)^\}", script, re.S | re.M)
    assert body is not None, "run_tests.sh has no quality() function"
    return [
        [word.replace("$VENV/bin/", "") for word in shlex.split(line)]
        for line in body.group(1).splitlines()
        if line.strip()
    ]


def pre_commit_commands() -> list[list[str]]:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    hooks = [hook for repo in config["repos"] for hook in repo["hooks"]]
    assert {repo["repo"] for repo in config["repos"]} == {"local"}  # nothing to download
    assert all(hook["language"] == "system" and hook["pass_filenames"] is False for hook in hooks)
    return [
        [word.replace(".venv/bin/", "") for word in shlex.split(hook["entry"])] for hook in hooks
    ]


def test_pre_commit_runs_the_quality_checks_of_run_tests() -> None:
    commands = quality_commands()
    assert [command[0] for command in commands] == ["ruff", "ruff", "mypy"]
    assert pre_commit_commands() == commands


@pytest.mark.parametrize(
    "document", DOCUMENTS + sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))
)
def test_relative_links_point_at_files_in_the_repository(document: str) -> None:
    path = ROOT / document
    broken = []
    for target in LINK.findall(path.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        if not (path.parent / target.split("#")[0]).exists():
            broken.append(target)
    assert broken == []


def test_changelog_keeps_an_unreleased_section() -> None:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "keepachangelog.com" in text
    assert re.search(r"^## \[Unreleased\]$", text, re.M)
    assert re.search(r"^### Added$", text, re.M)
