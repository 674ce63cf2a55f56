"""The one percentile every figure Wavry prints or writes uses (docs/benchmarks.md).

Rank rule: linear interpolation between the two nearest ranks of the sorted sample — position
``q·(n−1)`` counted from 0 (Hyndman & Fan type 7, NumPy's default). So p50 of an even-sized
sample is the mean of the two middle values, p0 is the minimum and p100 the maximum. An empty
sample has no percentile (None).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["percentile", "percentiles"]


def percentile(values: Iterable[float], q: float) -> float | None:
    """The ``q``-quantile (0 ≤ q ≤ 1) of ``values``, or None when there are none."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be within [0, 1], got {q}")
    s = sorted(values)
    return _sorted_percentile(s, q)


def _sorted_percentile(s: Sequence[float], q: float) -> float | None:
    if not s:
        return None
    k = (len(s) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return float(s[lo] + (s[hi] - s[lo]) * (k - lo))


def percentiles(
    values: Iterable[float], qs: Iterable[float] = (0.5, 0.95, 0.99), ndigits: int | None = None
) -> dict[str, float | None]:
    """``{"p50": …, "p95": …, "p99": …}`` (keys from ``qs``), sorting once; rounded when asked."""
    s = sorted(values)
    out: dict[str, float | None] = {}
    for q in qs:
        v = _sorted_percentile(s, q)
        key = f"p{q * 100:g}"
        out[key] = None if v is None else (round(v, ndigits) if ndigits is not None else v)
    return out
