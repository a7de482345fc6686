"""Peer judges, implemented from their public documentation, run on the same records as ours.

- :mod:`benchmarks.peers.flagger`: Flagger's analysis loop (static threshold checks every
  interval, cumulative failed checks, no data counts as a failure).
- :mod:`benchmarks.peers.kayenta`: Kayenta's NetflixACAJudge (Mann-Whitney classifier with
  98% confidence and tolerance 0.25, mean-ratio effect size, group scoring, marginal/pass).

Each exposes ``judge(lines, ...) -> PeerVerdict``: when (event time) it would roll back, if ever.
"""

from __future__ import annotations

from benchmarks.peers.series import PeerVerdict, Series, parse_records

__all__ = ["PeerVerdict", "Series", "parse_records"]
