"""Report notebooks are found in a checkout and in a wheel install."""

from __future__ import annotations

from pathlib import Path

import tomllib

from pystrument_lab.reports import TEMPLATES_DIR, templates_dir

ROOT = Path(__file__).resolve().parents[3]


def test_a_checkout_uses_its_notebooks_folder() -> None:
    assert TEMPLATES_DIR == ROOT / "notebooks" / "reports"
    assert sorted(p.stem for p in TEMPLATES_DIR.glob("*.ipynb")) == ["regression", "summary"]


def test_an_installed_wheel_uses_the_shared_data_folder(tmp_path: Path) -> None:
    site = tmp_path / "lib" / "site-packages"  # no notebooks/ next to the package
    installed = tmp_path / "share" / "pystrument" / "reports"
    installed.mkdir(parents=True)
    assert templates_dir(site, tmp_path) == installed
    # with neither, the checkout path is named (in the error a missing template gives)
    assert templates_dir(site, tmp_path / "empty") == site / "notebooks" / "reports"


def test_the_wheel_ships_the_notebooks_where_templates_dir_looks() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    data_files = project["tool"]["setuptools"]["data-files"]
    assert data_files == {"share/pystrument/reports": ["notebooks/reports/*.ipynb"]}
