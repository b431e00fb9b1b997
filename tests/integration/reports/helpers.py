"""Reading executed report notebooks and their HTML in tests."""

from __future__ import annotations

from pathlib import Path

import nbformat


def notebook_text(path: str | Path) -> str:
    """Every output of an executed notebook that a reader sees, as one string."""
    book = nbformat.read(str(path), as_version=4)
    parts = []
    for cell in book.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                parts.append(output["text"])
            elif output.get("output_type") == "error":
                parts.append(f"{output['ename']}: {output['evalue']}")
            data = output.get("data", {})
            for kind in ("text/markdown", "text/html", "text/plain"):
                if kind in data:
                    parts.append(data[kind])
                    break
    return "\n".join(parts)


def error_outputs(path: str | Path) -> list[str]:
    book = nbformat.read(str(path), as_version=4)
    return [
        f"{output['ename']}: {output['evalue']}"
        for cell in book.cells
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
