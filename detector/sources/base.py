"""The record-format seam: bytes from Kafka (or a line of a file) to decoded records.

Contract, checked for every implementation by ``tests/contract/test_record_formats.py``:

- ``decode(raw)`` returns the records one message carries (usually one; a Prometheus or OTLP
  batch may carry several) or raises :class:`DecodeError` with a machine-readable ``kind`` (one
  log line per kind of fault) and a ``reason`` a person can act on. It never raises anything
  else, whatever the bytes.
- A message may be a batch whose records are checked one by one (a native JSON array): when some
  of them cannot be used, ``decode`` raises :class:`BatchErrors`, a :class:`DecodeError` that
  carries the usable records and each rejected one with its position and reason, so a caller
  can judge the usable ones and dead-letter the others. Every :class:`DecodeError` says the
  same through ``records`` (none, unless a batch's) and ``rejections(raw)`` (the whole message,
  unless a batch's records), so a caller need not tell the two apart.
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
    ``bad_timestamp``, ``oversized``, ``not_object``, ``bad_value``, ``empty_batch``).
    ``records``: what the message still gives (nothing here; see :class:`BatchErrors`)."""

    records: Sequence[Sample | LogRecord] = ()

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(f"{kind}: {reason}")
        self.kind = kind
        self.reason = reason

    def rejections(self, raw: bytes) -> list[Rejected]:
        """What could not be used, each to be counted and dead-lettered: here the whole
        message ``raw``."""
        return [Rejected(None, raw, self)]


@dataclass(frozen=True, slots=True)
class Rejected:
    """What cannot be used: a record of a batch (``index``, from 0, and its JSON) or a whole
    message (``index`` None, and its bytes), and why."""

    index: int | None
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

    def rejections(self, raw: bytes) -> list[Rejected]:
        """The batch's rejected records (``raw``, the whole message, is not one of them)."""
        return self.rejected


class RecordFormat(Protocol):
    """Decodes one message. Implementations: ``native``, ``prometheus-adapter``, ``otlp-json``,
    ``fake``."""

    type_name: str

    def decode(self, raw: bytes) -> Sequence[Sample | LogRecord]: ...
