"""``type: fake``: hands back pre-built records, for unit tests of code that takes a format."""

from __future__ import annotations

from collections.abc import Sequence

from detector.core.types import LogRecord, Sample
from detector.sources.base import DecodeError


class FakeFormat:
    type_name = "fake"

    def __init__(self, records: dict[bytes, Sequence[Sample | LogRecord]]) -> None:
        self.records = records

    def decode(self, raw: bytes) -> Sequence[Sample | LogRecord]:
        try:
            return self.records[raw]
        except KeyError:
            raise DecodeError("not_json", "the fake knows no such record") from None
