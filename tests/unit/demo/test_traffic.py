"""The demo's request mix and its command line, without a server."""

from __future__ import annotations

import argparse

from pystrument_lab.demo import add_commands
from pystrument_lab.demo.traffic import CYCLE_LENGTH, ENDPOINTS, expected_counts, request_plan


def test_one_cycle_reaches_every_endpoint_and_the_plan_is_deterministic() -> None:
    assert set(expected_counts(len(ENDPOINTS))) == set(ENDPOINTS)
    assert set(expected_counts(len(ENDPOINTS) - 1)) != set(ENDPOINTS)
    assert len(ENDPOINTS) >= 12
    assert request_plan(45) == request_plan(45)
    assert sum(expected_counts(45).values()) == 45
    assert expected_counts(2 * CYCLE_LENGTH)[("GET", "/api/search")] == 6


def test_add_commands_registers_demo() -> None:
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["demo", "--requests", "5", "--json"])
    assert (args.command, args.requests, args.json) == ("demo", 5, True)
    assert parser.parse_args(["demo"]).requests is None
