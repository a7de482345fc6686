"""Decode and decide: the one path every record takes, in the live service and in ``replay``.

Who calls this: :mod:`detector.replay` for a whole file (``feed_all``) or each of its lines and
:mod:`detector.service` for each Kafka message. What it promises: the same bytes in the same
order give the same decisions, whoever calls; a record that cannot be decoded is returned as a
:class:`DecodeError` (the caller dead-letters it) and never stops the stream.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from config.schema import SentinelConfig
from detector.core.engine import Engine
from detector.core.types import Decision, LogRecord, Sample
from detector.sources.base import DecodeError, RecordFormat
from detector.sources.native import NativeFormat
from detector.sources.registry import build_format

log = logging.getLogger("canary_sentinel.decode")


@dataclass(slots=True)
class Fed:
    """What one message gave: decisions, and the records it carried (for checkpoint
    bookkeeping), or the decode error."""

    decisions: list[Decision] = field(default_factory=list)
    records: list[Sample | LogRecord] = field(default_factory=list)
    error: DecodeError | None = None


class Pipeline:
    """Decoder plus engine. ``bad`` counts decode failures by kind; the first failure of each
    kind is logged (then only counted), so a flood of bad records cannot flood the log."""

    def __init__(
        self,
        config: SentinelConfig,
        metrics_format: RecordFormat | None = None,
        logs_format: RecordFormat | None = None,
    ) -> None:
        k = config.kafka
        self.config = config
        self.engine = Engine(config)
        self.metrics_format = metrics_format or build_format(
            k.metrics_format, config.namespace, k.max_record_bytes
        )
        self.logs_format = logs_format or NativeFormat(config.namespace, k.max_record_bytes)
        self.bad: Counter[str] = Counter()

    def decode(self, raw: bytes, *, logs: bool = False) -> list[Sample | LogRecord]:
        fmt = self.logs_format if logs else self.metrics_format
        return list(fmt.decode(raw))

    def note_bad(self, err: DecodeError) -> None:
        if not self.bad[err.kind]:
            log.warning("dropping undecodable record (%s); further ones are only counted", err)
        self.bad[err.kind] += 1

    def feed(self, raw: bytes, *, logs: bool = False) -> Fed:
        try:
            records = (self.logs_format if logs else self.metrics_format).decode(raw)
        except DecodeError as err:
            self.note_bad(err)
            return Fed(error=err)
        process = self.engine.process
        if len(records) == 1:
            return Fed(process(records[0]), records)  # type: ignore[arg-type]
        decisions: list[Decision] = []
        for rec in records:
            decisions += process(rec)
        return Fed(decisions, records)  # type: ignore[arg-type]

    def feed_all(self, lines: Iterable[bytes | str]) -> list[Decision]:
        """The decisions of metric messages in order (``replay`` over a whole file): those of
        :meth:`feed` on each in turn, blank lines skipped, without the per-message bookkeeping."""
        decode = self.metrics_format.decode
        process = self.engine.process
        process_sample = self.engine.process_sample
        out: list[Decision] = []
        for line in lines:
            raw = line.encode() if isinstance(line, str) else line
            try:
                records = decode(raw)
            except DecodeError as err:
                # blank lines (no JSON format decodes one) are skipped, not counted: testing for
                # them here rather than before decoding keeps the check off the common path
                if raw and not raw.isspace():
                    self.note_bad(err)
                continue
            for rec in records:
                decisions = process_sample(rec) if type(rec) is Sample else process(rec)
                if decisions:
                    out += decisions
        return out
