"""Benchmarks of canary-sentinel, run by hand (not by the test suite).

- :mod:`benchmarks.nab`: the per-signal model on the Numenta Anomaly Benchmark, scored with NAB's
  published rules (:mod:`benchmarks.nab_scoring`).
- :mod:`benchmarks.canary_scenarios`: seeded canary-vs-baseline scenarios with ground truth, judged
  by our ``replay`` and by Flagger- and Kayenta-style peer judges (:mod:`benchmarks.peers`).
- :mod:`benchmarks.replay_speed`: replay throughput against a plain JSON parse of the same file.
- :mod:`benchmarks.throughput`: the live service through a real Kafka broker.

Each prints a table and, with ``--json``, one JSON object; each compares against a reference
measured in the same run, never a fixed time.
"""
