"""Records of the demo shop as the tests read them."""

from __future__ import annotations

from typing import Any


def warm_records(store: Any, key: str, route: str) -> list[dict[str, Any]]:
    """An endpoint's records without the first request each shop version served.

    The first request to an endpoint pays one-time work that is not the
    planted bottleneck: FastAPI inspects the endpoint's source file and
    anyio imports its socket helpers lazily (together about 0.1 s of CPU
    here, more on a loaded machine). Every later request measures the
    endpoint itself.
    """
    records = sorted(
        store.records.find({"project_key": key, "route": route}), key=lambda r: r["timestamp"]
    )
    seen: set[str] = set()
    warm = []
    for record in records:
        version = str(record.get("version_info", {}).get("app_version"))
        if version in seen:
            warm.append(record)
        seen.add(version)
    return warm
