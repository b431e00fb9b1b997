"""A bounded run of benchmarks/load.py: concurrent gzip senders, exact counts, flat memory.

Short mode: 30 s; long mode (PYSTRUMENT_LONG_TESTS=1): 3 minutes. The figures
for benchmarks/README.md come from running the script itself.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.load import run_load
from tests.utils.audit import scaled

DURATION = scaled(30.0, 180.0)

pytestmark = pytest.mark.slow


def test_sustained_ingest(mongo_url: str, tmp_path: Path) -> None:
    figures = run_load(duration=DURATION, senders=3, batch=50, mongo_url=mongo_url, home=tmp_path)
    print("sustained load:", {k: v for k, v in figures.items() if k != "rss_samples"})
    assert figures["collector_alive"]
    assert figures["errors"] == 0
    assert figures["records_accepted"] == figures["requests"] * 50 > 0
    assert figures["records_stored"] == figures["records_accepted"]
    assert figures["stored_matches_accepted"]  # per sender, and no trace id twice
    rss = figures["rss_mb"]
    # No growth under steady load: the last third of the run is within 20 % (+16 MB of
    # allocator slack) of the first third after warm-up.
    assert rss["warm_last_third_median"] <= rss["warm_first_third_median"] * 1.2 + 16, rss
