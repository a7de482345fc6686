"""The record-format seam: bytes from Kafka (or a line of a file) to decoded records.

Contract, checked for every implementation by ``tests/contract/test_record_formats.py``:

- ``decode(raw)`` returns the records one message carries (usually one; a Prometheus or OTLP
  batch may carry several) or raises :class:`DecodeError` with a machine-readable ``kind`` (one
  log line per kind of fault) and a ``reason`` a person can act on. It never raises anything
  else, whatever the bytes.
- Decoding is pure and deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from detector.core.types import LogRecord, Sample


class DecodeError(ValueError):
    """A record that cannot be used. ``kind`` is short and stable (``not_json``,
    ``missing_field``, ``wrong_type``, ``non_finite``, ``bad_role``, ``negative_count``,
    ``bad_timestamp``, ``oversized``, ``not_object``, ``bad_value``)."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(f"{kind}: {reason}")
        self.kind = kind
        self.reason = reason


class RecordFormat(Protocol):
    """Decodes one message. Implementations: ``native``, ``prometheus-adapter``, ``otlp-json``,
    ``fake``."""

    type_name: str

    def decode(self, raw: bytes) -> Sequence[Sample | LogRecord]: ...
