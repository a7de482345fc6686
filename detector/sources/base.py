"""The record-format seam: bytes from Kafka (or a line of a file) to decoded records.

Contract, checked for every implementation by ``tests/contract/test_record_formats.py``:

- ``decode(raw)`` returns the records one message carries (usually one; a Prometheus or OTLP
  batch may carry several) or raises :class:`DecodeError` with a machine-readable ``kind`` (one
  log line per kind of fault) and a ``reason`` a person can act on. It never raises anything
  else, whatever the bytes.
- A message may be a batch whose records are checked one by one (a native JSON array): when some
  of them cannot be used, ``decode`` raises :class:`BatchErrors`, a :class:`DecodeError` that
  carries the usable records and each rejected one with its position and reason, so a caller
  can judge the usable ones and dead-letter the others. A caller that treats it as any other
  :class:`DecodeError` dead-letters the whole message: nothing is lost either way.
- Decoding is pure and deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from detector.core.types import LogRecord, Sample


class DecodeError(ValueError):
    """A record that cannot be used. ``kind`` is short and stable (``not_json``,
    ``missing_field``, ``wrong_type``, ``non_finite``, ``bad_role``, ``negative_count``,
    ``bad_timestamp``, ``oversized``, ``not_object``, ``bad_value``, ``empty_batch``)."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(f"{kind}: {reason}")
        self.kind = kind
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Rejected:
    """One record of a batch that cannot be used: its position (0-based), its JSON, and why."""

    index: int
    raw: bytes
    error: DecodeError


class BatchErrors(DecodeError):
    """Some records of a batch message cannot be used. ``records`` are the usable ones, in
    message order; ``rejected`` the others. ``kind`` and ``reason`` are those of the first
    rejected record, the reason prefixed with how many of the batch were rejected."""

    def __init__(
        self, records: Sequence[Sample | LogRecord], rejected: Sequence[Rejected], size: int
    ) -> None:
        first = rejected[0]
        super().__init__(
            first.error.kind,
            f"{len(rejected)} of {size} records of the batch rejected; "
            f"record {first.index}: {first.error.reason}",
        )
        self.records = list(records)
        self.rejected = list(rejected)


class RecordFormat(Protocol):
    """Decodes one message. Implementations: ``native``, ``prometheus-adapter``, ``otlp-json``,
    ``fake``."""

    type_name: str

    def decode(self, raw: bytes) -> Sequence[Sample | LogRecord]: ...
