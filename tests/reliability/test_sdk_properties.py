"""Property tests of the SDK's pure parts: configuration parsing, tree pruning, histograms."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from performance_monitor.core import histogram
from performance_monitor.core.tree import OTHER, Node, flatten
from performance_monitor.utils.config import Config, ConfigError

from tests.utils.audit import scaled

PROPERTY_SETTINGS = settings(
    max_examples=scaled(150, 2000),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def config(**values: Any) -> Config:
    # No environment and an explicit (empty) file: only the values under test count.
    return Config(values, environ={})


# -- configuration ---------------------------------------------------------------------

fractions_ = st.floats(min_value=0.0, max_value=1.0)
percentages = st.floats(min_value=1.0, max_value=100.0, exclude_min=True)
out_of_range = st.floats(allow_nan=True, allow_infinity=True).filter(
    lambda x: not 0.0 <= x <= 100.0
)


@PROPERTY_SETTINGS
@given(rate=fractions_, as_text=st.booleans())
def test_sampling_fraction_is_kept(rate: float, as_text: bool) -> None:
    assert config(sampling_rate=repr(rate) if as_text else rate).sampling_rate == rate


@PROPERTY_SETTINGS
@given(percent=percentages, as_text=st.booleans())
def test_sampling_percentage_becomes_fraction(percent: float, as_text: bool) -> None:
    rate = config(sampling_rate=repr(percent) if as_text else percent).sampling_rate
    assert rate == percent / 100.0
    assert 0.01 < rate <= 1.0


@PROPERTY_SETTINGS
@given(value=out_of_range | st.text(max_size=8).filter(lambda t: not _is_number(t)) | st.just(True))
def test_sampling_out_of_range_names_the_key(value: Any) -> None:
    with pytest.raises(ConfigError, match="sampling_rate") as raised:
        config(sampling_rate=value)
    assert "[0, 1]" in str(raised.value) and "(1, 100]" in str(raised.value)


@PROPERTY_SETTINGS
@given(percent=st.integers(min_value=0, max_value=100))
def test_sampling_from_environment_matches_explicit(percent: int) -> None:
    from_env = Config(environ={"PYSTRUMENT_SAMPLING_RATE": str(percent)}).sampling_rate
    assert from_env == config(sampling_rate=percent).sampling_rate
    assert from_env == (percent if percent <= 1 else percent / 100)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


#: (key, low, high, integer) for the numeric settings whose range the docs state.
RANGES = [
    ("batch_size", 1, 10_000, True),
    ("max_tree_nodes", 2, 100_000, True),
    ("max_retries", 0, 100, True),
    ("max_queue_size", 1, 1_000_000, True),
    ("request_timeout", 0.01, 600, False),
    ("batch_timeout", 0.01, 3600, False),
    ("profiler_interval", 0.0001, 1.0, False),
]


@PROPERTY_SETTINGS
@given(spec=st.sampled_from(RANGES), data=st.data())
def test_numeric_settings_accept_their_range_and_refuse_the_rest(spec: Any, data: Any) -> None:
    key, low, high, integer = spec
    inside = (
        data.draw(st.integers(min_value=low, max_value=high))
        if integer
        else data.draw(st.floats(min_value=low, max_value=high))
    )
    assert getattr(config(**{key: inside}), key) == inside
    assert getattr(config(**{key: str(inside)}), key) == inside
    outside = data.draw(
        st.floats(allow_nan=True).filter(lambda x: math.isnan(x) or not low <= x <= high)
        | (
            st.floats(min_value=low, max_value=high).filter(lambda x: x != int(x))
            if integer
            else st.nothing()
        )
    )
    with pytest.raises(ConfigError, match=key):
        config(**{key: outside})


@PROPERTY_SETTINGS
@given(
    word=st.sampled_from(["1", "true", "yes", "on", "0", "false", "no", "off"]),
    case=st.sampled_from([str.lower, str.upper, str.title]),
    pad=st.sampled_from(["", " ", "\t"]),
)
def test_boolean_spellings(word: str, case: Any, pad: str) -> None:
    expected = word in ("1", "true", "yes", "on")
    assert config(track_memory=pad + case(word) + pad).track_memory is expected


# -- tree flattening and pruning -------------------------------------------------------

durations = st.floats(min_value=0.0, max_value=10.0, allow_subnormal=False)


@st.composite
def trees(draw: st.DrawFn, max_depth: int = 6) -> Node:
    """A call tree whose durations are consistent: each node = self time + its children."""

    def build(depth: int) -> Node:
        fan_out = 0 if depth >= max_depth else draw(st.integers(0, 4 if depth < 3 else 2))
        children = [build(depth + 1) for _ in range(fan_out)]
        own = draw(durations)
        name = draw(st.sampled_from(["view", "query", "render", "helper", "loop"]))
        return Node(
            function_name=f"{name}{depth}",
            file_path=f"/app/{name}.py",
            line_number=depth,
            duration=own + sum(child.duration for child in children),
            is_application=draw(st.booleans()),
            children=children,
        )

    return build(0)


def _count(node: Node) -> int:
    return 1 + sum(_count(child) for child in node.children)


def _all_durations(node: Node) -> list[float]:
    return [node.duration] + [d for child in node.children for d in _all_durations(child)]


@PROPERTY_SETTINGS
@given(root=trees(), budget=st.integers(min_value=2, max_value=60))
def test_flatten_keeps_budget_links_and_times(root: Node, budget: int) -> None:
    nodes = flatten(root, budget=budget)
    size = _count(root)

    assert len(nodes) <= budget
    if size <= budget:
        assert len(nodes) == size and all(n["function_name"] != OTHER for n in nodes)

    # ids are the pre-order positions; parents come before children and exist
    assert [n["call_id"] for n in nodes] == list(range(len(nodes)))
    assert nodes[0]["parent_call_id"] is None and nodes[0]["depth"] == 0
    by_id = {n["call_id"]: n for n in nodes}
    children: dict[int, list[dict[str, Any]]] = {n["call_id"]: [] for n in nodes}
    for node in nodes[1:]:
        parent = by_id[node["parent_call_id"]]
        assert parent["call_id"] < node["call_id"]
        assert node["depth"] == parent["depth"] + 1
        children[parent["call_id"]].append(node)

    tolerance = 1e-9 * max(1.0, root.duration)
    for node in nodes:
        kids = children[node["call_id"]]
        assert [k["call_order"] for k in kids] == list(range(len(kids)))
        assert sum(k["function_name"] == OTHER for k in kids) <= 1
        assert node["self_time"] >= 0.0
        assert math.isclose(
            node["self_time"] + sum(k["duration"] for k in kids),
            node["duration"],
            abs_tol=tolerance,
        )
        if node["function_name"] == OTHER:
            assert not kids

    # the whole request's time is accounted for by self times, pruned time included
    assert nodes[0]["duration"] == root.duration
    assert math.isclose(sum(n["self_time"] for n in nodes), root.duration, abs_tol=tolerance * size)
    # every kept node is an original node with its original duration
    originals = _all_durations(root)
    for node in nodes:
        if node["function_name"] != OTHER:
            assert node["duration"] in originals


# -- histogram and percentiles ---------------------------------------------------------

sample_durations = st.lists(
    st.floats(min_value=histogram.MIN_DURATION, max_value=1e5), min_size=1, max_size=300
)


def nearest_rank(values: list[float], q: float) -> float:
    """The exact nearest-rank percentile, with the rank computed in the histogram's own way."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


def fold(values: list[float]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for value in values:
        index = histogram.bucket_index(value)
        counts[index] = counts.get(index, 0) + 1
    return counts


@PROPERTY_SETTINGS
@given(values=sample_durations, q=st.floats(min_value=0.0, max_value=100.0))
@example(values=[0.001] * 7 + [1.0] * 93, q=50.0)
def test_percentile_within_relative_error_of_exact(values: list[float], q: float) -> None:
    estimate = histogram.percentile(fold(values), q, lowest=min(values), highest=max(values))
    exact = nearest_rank(values, q)
    assert estimate is not None
    assert abs(estimate - exact) <= histogram.RELATIVE_ERROR * exact * (1 + 1e-9), (estimate, exact)


@PROPERTY_SETTINGS
@given(value=st.floats(min_value=histogram.MIN_DURATION, max_value=1e5))
def test_bucket_holds_its_value(value: float) -> None:
    low, high = histogram.bucket_bounds(histogram.bucket_index(value))
    # edges computed through log/exp may disagree by an ulp or two
    assert low * (1 - 1e-12) <= value < high * (1 + 1e-12)
    mid = histogram.bucket_value(histogram.bucket_index(value))
    assert abs(mid - value) <= histogram.RELATIVE_ERROR * value * (1 + 1e-9)


@PROPERTY_SETTINGS
@given(parts=st.lists(sample_durations, min_size=1, max_size=4))
def test_merge_is_the_histogram_of_all_values(parts: list[list[float]]) -> None:
    as_stored = [{str(k): v for k, v in fold(part).items()} for part in parts]
    merged = histogram.merge(as_stored)
    assert merged == fold([value for part in parts for value in part])
    assert sum(merged.values()) == sum(len(part) for part in parts)


@PROPERTY_SETTINGS
@given(values=sample_durations)
def test_extreme_percentiles_are_exact_and_monotone(values: list[float]) -> None:
    counts = fold(values)
    low, high = min(values), max(values)
    assert histogram.percentile(counts, 0, lowest=low, highest=high) == low
    assert histogram.percentile(counts, 100, lowest=low, highest=high) == high
    readings = [histogram.percentile(counts, q, lowest=low, highest=high) for q in range(0, 101, 5)]
    assert readings == sorted(readings)  # type: ignore[type-var]


def test_percentile_rank_is_exact_for_whole_percentages() -> None:
    values = [0.001] * 7 + [1.0] * 93  # the 7th value is 1 ms, the 8th is 1 s
    counts = fold(values)
    exact_rank = math.ceil(Fraction(7, 100) * len(values))
    assert exact_rank == 7
    estimate = histogram.percentile(counts, 7, lowest=0.001, highest=1.0)
    assert estimate is not None
    assert abs(estimate - 0.001) <= histogram.RELATIVE_ERROR * 0.001


def test_durations_below_the_first_bucket_share_bucket_zero() -> None:
    """Documented limit: everything under MIN_DURATION (1 µs) is one bucket."""
    assert {histogram.bucket_index(x) for x in (0.0, 1e-9, 5e-7, histogram.MIN_DURATION)} == {0}
