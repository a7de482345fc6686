"""Decode and decide: the one path every record takes, in the live service and in ``replay``.

Who calls this: :mod:`detector.replay` for a whole file (``feed_all``) or each of its lines and
:mod:`detector.service` for each Kafka message. What it promises: the same bytes in the same
order give the same decisions, whoever calls; a record that cannot be decoded is returned as a
:class:`DecodeError` (the caller dead-letters it) and never stops the stream.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from config.schema import SentinelConfig
from detector.core.engine import Engine, canary_weight
from detector.core.types import Decision, LogRecord, Role, Sample, SignalKind
from detector.sources.base import DecodeError, RecordFormat
from detector.sources.native import (
    _COUNT,
    _KIND,
    _KIND_OR_NONE,
    _LABELS,
    _NAMESPACE,
    _ROLE,
    _ROLES,
    _SERVICE,
    _SIGNAL,
    _TS,
    _VALUE,
    NativeFormat,
)
from detector.sources.registry import build_format

log = logging.getLogger("canary_sentinel.decode")

_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError
_CANARY = Role.CANARY
_THROUGHPUT = SignalKind.THROUGHPUT
_NAN = math.nan


@dataclass(slots=True)
class Fed:
    """What one message gave: decisions, and the records it carried (for checkpoint
    bookkeeping); ``error`` is the decode error, beside the usable records of a batch
    (:class:`~detector.sources.base.BatchErrors`) or instead of any."""

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

    def decode(
        self, raw: bytes, *, logs: bool = False
    ) -> tuple[list[Sample | LogRecord], DecodeError | None]:
        """The usable records of one message, and what could not be used (``None`` when all
        could): the message's :class:`DecodeError`, or a batch's
        :class:`~detector.sources.base.BatchErrors` beside its usable records. Every failure is
        counted in ``bad``."""
        fmt = self.logs_format if logs else self.metrics_format
        try:
            return list(fmt.decode(raw)), None
        except DecodeError as err:
            for r in err.rejections(raw):
                self.note_bad(r.error)
            return list(err.records), err

    def note_bad(self, err: DecodeError) -> None:
        if not self.bad[err.kind]:
            log.warning("dropping undecodable record (%s); further ones are only counted", err)
        self.bad[err.kind] += 1

    def feed(self, raw: bytes, *, logs: bool = False) -> Fed:
        records, err = self.decode(raw, logs=logs)
        process = self.engine.process
        decisions: list[Decision] = []
        for rec in records:
            decisions += process(rec)
        return Fed(decisions, records, err)

    def feed_all(self, lines: Iterable[bytes | str]) -> list[Decision]:
        """The decisions of metric messages in order (``replay`` over a whole file): those of
        :meth:`feed` on each in turn, blank lines skipped, without the per-message bookkeeping.

        Most records of a replay are well-formed samples of a signal their service already has
        (the baseline's history before a canary, then both sides). With the native format those
        are checked and folded in right here, written out: no :class:`Sample` is built and none
        of the general path's calls is made (together an eighth of the instructions of a replay,
        measured with cachegrind). Every other line (the first sample of a service or signal, a
        new revision, a log record, anything broken or unusual) takes the general path, the one
        :meth:`feed` takes. The written-out path must do exactly what that path does:
        ``tests/unit/test_hot_path.py`` compares the two on every kind of record, so a change to
        the rules of ``sample_from`` or to ``Engine.process_sample`` and ``Engine._fold`` must be
        made here too."""
        engine = self.engine
        process = engine.process
        process_sample = engine.process_sample
        decide = engine.decide
        tick = engine.tick
        services = engine.services
        stats = engine.stats
        lateness = engine.lateness
        interval = engine.interval
        fmt = self.metrics_format
        # A line of up to max_bytes / 4 characters is within max_bytes as UTF-8 (at most four
        # bytes a character), and orjson reads text as its UTF-8, so such a line parses as its
        # bytes do on the general path. A format other than the native one (a subclass may
        # decode otherwise) takes the general path for every line.
        fast_len = fmt.max_bytes // 4 if type(fmt) is NativeFormat else -1
        good_labels: dict[str, str] = {}  # the last labels found to be all strings
        out: list[Decision] = []
        for line in lines:
            if len(line) <= fast_len:
                obj: Any
                try:
                    obj = _loads(line)
                except _JSONDecodeError:
                    obj = None
                try:
                    # Anything but a JSON object fails the first lookup (TypeError). The
                    # service's and the signal's names need no check of their own: known ones
                    # are names of records that passed every check. A known signal keeps its
                    # own kind, so the record's is only checked, and then only when it is not
                    # the signal's (comparing is cheaper than hashing the name).
                    st = services[obj[_SERVICE]]
                    sig = st.signals[obj[_SIGNAL]]
                    role = _ROLES[obj[_ROLE]]
                    ts = obj[_TS]
                    value = obj[_VALUE]
                    kind = obj.get(_KIND)
                    if kind is not None and kind != sig.kind:
                        _KIND_OR_NONE[kind]
                except (KeyError, TypeError):
                    ts = None  # not a common sample: the general path
                # the other rules of sample_from's fast path; orjson makes no NaN or infinity,
                # so a `ts` that is not negative is in range
                if type(ts) is float and ts >= 0.0 and type(value) is float:
                    # obj.get each time: three method calls cost less than one bound method
                    namespace = obj.get(_NAMESPACE)
                    count = obj.get(_COUNT)
                    labels = obj.get(_LABELS)
                    ok = (namespace is None or (type(namespace) is str and namespace)) and (
                        count is None or (type(count) is int and count >= 0)
                    )
                    # most records carry the labels of the record before: equal to labels whose
                    # values are all strings, theirs are too (no other JSON value equals one)
                    if ok and labels is not None and labels != good_labels:
                        if type(labels) is dict:
                            for v in labels.values():
                                if type(v) is not str:
                                    ok = False
                                    break
                            else:
                                good_labels = labels
                        else:
                            ok = False
                    weight = _NAN
                    if ok and role is _CANARY and labels:
                        rev = labels.get("revision")
                        if rev is not None and rev != st.policy.revision:
                            ok = False  # a new revision, or a late record of a replaced one
                        elif sig.kind is _THROUGHPUT:
                            weight = canary_weight(labels.get("weight"))
                    if ok:
                        # Engine.process_sample and Engine._fold, for a known signal of the
                        # current revision
                        stats.samples += 1
                        max_ts = st.max_ts
                        if ts < max_ts - lateness:
                            st.late += 1
                            stats.late += 1
                            continue
                        if ts > max_ts:
                            st.max_ts = max_ts = ts
                        check = sig.add(ts, role, value, count, interval, weight)
                        if check is not None:
                            decisions = decide(st, st.policy, sig, check)
                        elif max_ts - st.last_tick >= interval:
                            decisions = tick(st, st.policy)
                        else:
                            continue
                        if decisions:
                            stats.decisions += len(decisions)
                            out += decisions
                        continue
            # the general path; blank lines (no format decodes one) are skipped, not counted
            raw = line.encode() if isinstance(line, str) else line
            if not raw or raw.isspace():
                continue
            for rec in self.decode(raw)[0]:
                decisions = process_sample(rec) if type(rec) is Sample else process(rec)
                if decisions:
                    out += decisions
        return out
