from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from pystrument_lab import trends
from pystrument_lab.errors import ParameterError

# Windows end now-ish: how far back a window starts decides its resolution.
HOUR = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)


def test_parse_duration() -> None:
    assert trends.parse_duration("15m") == timedelta(minutes=15)
    assert trends.parse_duration("24h") == timedelta(hours=24)
    assert trends.parse_duration("7d") == timedelta(days=7)
    assert trends.parse_duration("2w") == timedelta(days=14)
    for bad in ("", "1y", "-1h", "0h", "1000d"):
        with pytest.raises(ParameterError):
            trends.parse_duration(bad)


@pytest.mark.parametrize(
    ("time_range", "resolution", "bucket"),
    [
        ("1h", "1m", 60),
        ("3h", "1m", 300),
        ("24h", "10m", 600),
        ("7d", "1h", 3600),
        ("30d", "1h", 6 * 3600),
    ],
)
def test_window_picks_resolution_and_bucket(time_range: str, resolution: str, bucket: int) -> None:
    until = HOUR + timedelta(minutes=30, seconds=30)
    span = trends.window(time_range, until=until)
    assert span.resolution == resolution
    assert span.bucket == timedelta(seconds=bucket)
    assert span.until == until


@pytest.mark.parametrize(
    ("age", "resolution"),
    [(timedelta(hours=1), "1m"), (timedelta(days=3), "10m"), (timedelta(days=20), "1h")],
)
def test_a_window_further_back_than_a_resolution_is_kept_reads_a_coarser_one(
    age: timedelta, resolution: str
) -> None:
    since = HOUR - age
    span = trends.window(since=since, until=since + timedelta(hours=1))
    assert span.resolution == resolution
    assert span.bucket == {"1m": timedelta(minutes=1), "10m": timedelta(minutes=10)}.get(
        resolution, timedelta(hours=1)
    )


def test_trend_buckets_fill_gaps_and_sum() -> None:
    until = HOUR
    span = trends.window("10m", until=until, bucket="5m")
    docs = [
        {
            "bucket_start": until - timedelta(minutes=9),
            "count": 2,
            "errors": 1,
            "duration_sum": 0.3,
            "duration_min": 0.1,
            "duration_max": 0.2,
            "histogram": {"100": 2},
        },
        {
            "bucket_start": until - timedelta(minutes=8),
            "count": 1,
            "errors": 0,
            "duration_sum": 0.5,
            "duration_min": 0.5,
            "duration_max": 0.5,
            "histogram": {"110": 1},
        },
    ]
    rows = trends.trend_buckets(docs, span)
    assert [row["count"] for row in rows] == [3, 0]
    assert rows[0]["error_rate"] == pytest.approx(1 / 3)
    assert rows[0]["throughput"] == pytest.approx(3 / 300)
    assert rows[0]["max"] == 0.5 and rows[1]["p95"] is None


def test_explicit_bucket_is_rounded_to_whole_documents() -> None:
    until = HOUR
    assert trends.window("24h", until=until, bucket="15m").bucket == timedelta(minutes=20)
    assert trends.window("7d", until=until, bucket="5m").bucket == timedelta(hours=1)
    assert trends.window("24h", until=until, bucket="30m").bucket == timedelta(minutes=30)


def test_exception_buckets_count_each_type_per_bucket_most_frequent_first() -> None:
    until = HOUR
    span = trends.window("10m", until=until, bucket="5m")
    first, second = span.since, span.since + timedelta(minutes=5)
    docs = [
        {"bucket_start": until - timedelta(minutes=9), "exceptions": {"KeyError": 1}},
        {"bucket_start": until - timedelta(minutes=8),
         "exceptions": {"shop\uff0eStockMismatch": 2, "KeyError": 1}},
        {"bucket_start": until - timedelta(minutes=2), "exceptions": {"shop\uff0eStockMismatch": 2}},
        {"bucket_start": until - timedelta(minutes=1)},  # no exception in this document
    ]  # fmt: skip
    assert trends.exception_buckets(docs, span) == [
        {"bucket_start": first, "exception": "shop.StockMismatch", "count": 2},
        {"bucket_start": second, "exception": "shop.StockMismatch", "count": 2},
        {"bucket_start": first, "exception": "KeyError", "count": 2},
        {"bucket_start": second, "exception": "KeyError", "count": 0},
    ]
    assert trends.exception_buckets(docs[3:], span) == []
