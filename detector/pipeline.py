"""Decode and decide: the one path every record takes, in the live service and in ``replay``.

Who calls this: :mod:`detector.replay` for a whole file (``feed_all``) or each of its lines and
:mod:`detector.service` for each Kafka message. What it promises: the same bytes in the same
order give the same decisions, whoever calls; a record that cannot be decoded is returned as a
:class:`DecodeError` (the caller dead-letters it) and never stops the stream.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from config.schema import SentinelConfig
from detector.core.engine import Engine
from detector.core.types import Decision, LogRecord, Sample
from detector.sources.base import DecodeError, RecordFormat
from detector.sources.native import NativeFormat
from detector.sources.registry import build_format

log = logging.getLogger("canary_sentinel.decode")

# ``decode_one(raw)``: the one record of a message, where ``raw`` is bytes or ASCII-only text
DecodeOne = Callable[[bytes | str], Sample | LogRecord]


def _decode_one(fmt: RecordFormat) -> DecodeOne | None:
    """``fmt.decode_one`` when the format has it (its messages carry exactly one record, as
    :class:`NativeFormat`'s do): the same record as ``decode``, without building a one-element
    list for every message."""
    one: DecodeOne | None = getattr(fmt, "decode_one", None)
    return one


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
        self._metrics_one = _decode_one(self.metrics_format)
        self._logs_one = _decode_one(self.logs_format)

    def decode(self, raw: bytes, *, logs: bool = False) -> list[Sample | LogRecord]:
        one = self._logs_one if logs else self._metrics_one
        if one is not None:
            return [one(raw)]
        fmt = self.logs_format if logs else self.metrics_format
        return list(fmt.decode(raw))

    def note_bad(self, err: DecodeError) -> None:
        if not self.bad[err.kind]:
            log.warning("dropping undecodable record (%s); further ones are only counted", err)
        self.bad[err.kind] += 1

    def feed(self, raw: bytes, *, logs: bool = False) -> Fed:
        one = self._logs_one if logs else self._metrics_one
        fmt = self.logs_format if logs else self.metrics_format
        try:
            records = [one(raw)] if one is not None else fmt.decode(raw)
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
        one = self._metrics_one
        if one is None:
            return self._feed_all_batches(lines)
        process = self.engine.process
        process_sample = self.engine.process_sample
        out: list[Decision] = []
        for line in lines:
            # ASCII-only text is its own UTF-8: decode_one reads it in place, without the copy
            # that encoding makes (isascii on a str reads a flag)
            raw = line.encode() if type(line) is str and not line.isascii() else line
            try:
                rec = one(raw)
            except DecodeError as err:
                # blank lines (no JSON format decodes one) are skipped, not counted: testing for
                # them here rather than before decoding keeps the check off the common path
                if raw and not raw.isspace():
                    self.note_bad(err)
                continue
            decisions = process_sample(rec) if type(rec) is Sample else process(rec)
            if decisions:
                out += decisions
        return out

    def _feed_all_batches(self, lines: Iterable[bytes | str]) -> list[Decision]:
        """:meth:`feed_all` for a format whose messages may carry several records."""
        decode = self.metrics_format.decode
        process = self.engine.process
        process_sample = self.engine.process_sample
        out: list[Decision] = []
        for line in lines:
            raw = line.encode() if isinstance(line, str) else line
            try:
                records = decode(raw)
            except DecodeError as err:
                if raw and not raw.isspace():  # a blank line: skipped, not counted
                    self.note_bad(err)
                continue
            for rec in records:
                decisions = process_sample(rec) if type(rec) is Sample else process(rec)
                if decisions:
                    out += decisions
        return out
