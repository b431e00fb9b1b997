"""The committed guide notebooks are what ``notebooks/make_notebooks.py`` writes.

Their cells are edited in the generator; a notebook changed by hand (or a
generator change not re-run) fails here with the cell that differs.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[3] / "notebooks"


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_notebooks", NOTEBOOKS / "make_notebooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def essentials(book: nbformat.NotebookNode) -> list[tuple[str, str, str, list[str]]]:
    """What a reader runs: each cell's id, type, source and tags (never its outputs)."""
    return [
        (cell.get("id", ""), cell.cell_type, cell.source, list(cell.metadata.get("tags", [])))
        for cell in book.cells
    ]


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("notebooks")
    load_generator().main(directory)
    return directory


def test_generator_writes_every_committed_guide(regenerated: Path) -> None:
    committed = sorted(path.name for path in NOTEBOOKS.glob("*.ipynb"))
    assert sorted(path.name for path in regenerated.glob("*.ipynb")) == committed
    assert "01_quickstart.ipynb" in committed


@pytest.mark.parametrize("name", sorted(path.name for path in NOTEBOOKS.glob("*.ipynb")))
def test_committed_notebook_matches_generator(regenerated: Path, name: str) -> None:
    fresh = nbformat.read(regenerated / name, as_version=4)
    committed = nbformat.read(NOTEBOOKS / name, as_version=4)
    hint = (
        f"{name} differs from notebooks/make_notebooks.py: run `python notebooks/make_notebooks.py`"
    )
    assert committed.metadata.get("kernelspec") == fresh.metadata.get("kernelspec"), hint
    for got, want in zip(essentials(committed), essentials(fresh), strict=False):
        assert got == want, f"{hint} (cell {want[0]})"
    assert len(committed.cells) == len(fresh.cells), hint
    assert any("parameters" in tags for *_, tags in essentials(committed)), name


def test_a_hand_edit_is_caught(regenerated: Path) -> None:
    name = "01_quickstart.ipynb"
    book = nbformat.read(regenerated / name, as_version=4)
    book.cells[1].source += "\n# edited by hand"
    assert essentials(book) != essentials(nbformat.read(regenerated / name, as_version=4))
