"""Human-readable times and shares shared by the widgets."""

from __future__ import annotations


def format_seconds(seconds: float) -> str:
    """``1.23 s``, ``45.6 ms``, ``789 µs``: three significant digits, sign kept."""
    sign = "-" if seconds < 0 else ""
    value = abs(seconds)
    if value >= 1:
        return f"{sign}{value:.3g} s"
    if value >= 1e-3:
        return f"{sign}{value * 1e3:.3g} ms"
    if value == 0:
        return "0 s"
    return f"{sign}{value * 1e6:.3g} µs"


def format_ms(seconds: float) -> str:
    """A latency in milliseconds whatever its size: ``1,234 ms``, ``45.6 ms``, ``0.08 ms``."""
    value = seconds * 1e3
    if abs(value) >= 100:
        return f"{value:,.0f} ms"
    return f"{value:.3g} ms"


def format_share(share: float) -> str:
    return f"{share * 100:.1f}%"
