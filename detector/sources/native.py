"""The native JSON format of DESIGN.md: one metric sample or one log record per message, or a
batch of them (a JSON array, so that faust's cost per message is shared by its records).

Every rule of the format is checked here; the first broken rule is the :class:`DecodeError`.
A message with ``signal``/``value`` is a metric sample; one with ``level``/``message`` (and no
``signal``) is a log record, so a replay file may mix both.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import orjson

from detector.core.types import LogRecord, Role, Sample, SignalKind
from detector.sources.base import BatchErrors, DecodeError, Rejected

_ROLES = {
    "canary": Role.CANARY,
    "baseline": Role.BASELINE,
    "stable": Role.BASELINE,
    "primary": Role.BASELINE,
}
_KINDS = {k.value: k for k in SignalKind}
# `kind` absent (None) or a kind's name; any other value misses (KeyError, or TypeError when
# unhashable) and the record takes the careful path, which names the broken rule
_KIND_OR_NONE: dict[str | None, SignalKind | None] = {k.value: k for k in SignalKind}
_KIND_OR_NONE[None] = None
_loads = orjson.loads
_INF = math.inf
_new = object.__new__
# The field names as orjson's own key objects. orjson hands out one cached str per key text, the
# same object in every message, and builds its dicts with generic keys: looked up by an equal but
# distinct str (a literal here), each field costs a hash match and then a full string comparison;
# looked up by orjson's object, an identity hit, about half the cost (the fast path reads nine
# fields per record). Were orjson to hand out other objects (its key cache is bounded, so a
# process that parses many other keys can see an entry replaced), the lookups would still be
# right (dict lookup is by equality), only slower; tests/unit/test_decode.py checks the identity
# in a fresh process. Pipeline.feed_all's written-out path for common samples reads these keys,
# _ROLES and _KIND_OR_NONE too, and checks what sample_from's fast path checks: a rule changed
# here must be changed there.
_TS, _SERVICE, _NAMESPACE, _ROLE, _SIGNAL, _KIND, _VALUE, _COUNT, _LABELS = _loads(
    b'{"ts":0,"service":0,"namespace":0,"role":0,"signal":0,"kind":0,"value":0,"count":0,"labels":0}'
)


def parse_ts(v: Any) -> float:
    """Epoch seconds (a finite number) or an RFC 3339 string, as epoch seconds.

    >>> parse_ts("2026-11-27T10:15:00Z")
    1795774500.0
    """
    if isinstance(v, bool):
        raise DecodeError("bad_timestamp", "`ts` must be epoch seconds or RFC 3339, not a boolean")
    if isinstance(v, int | float):
        f = float(v)
        if not math.isfinite(f) or f < 0:
            raise DecodeError("bad_timestamp", f"`ts` must be finite epoch seconds >= 0, got {v}")
        return f
    if isinstance(v, str):
        try:
            dt = datetime.fromisoformat(v)
        except ValueError:
            raise DecodeError("bad_timestamp", f"`ts` {v[:40]!r} is not RFC 3339") from None
        if dt.tzinfo is None:
            raise DecodeError("bad_timestamp", f"`ts` {v[:40]!r} has no time zone offset")
        return dt.timestamp()
    raise DecodeError("bad_timestamp", "`ts` must be epoch seconds or an RFC 3339 string")


def _str(obj: dict[str, Any], key: str, required: bool = True) -> str | None:
    v = obj.get(key)
    if v is None:
        if required:
            raise DecodeError("missing_field", f"required field `{key}` is missing")
        return None
    if not isinstance(v, str) or not v:
        raise DecodeError("wrong_type", f"`{key}` must be a non-empty string")
    return v


def _labels(obj: dict[str, Any]) -> dict[str, str]:
    v = obj.get("labels")
    if v is None:
        return {}
    if not isinstance(v, dict) or not all(isinstance(x, str) for x in v.values()):
        raise DecodeError("wrong_type", "`labels` must be an object of string to string")
    return v


def _role(obj: dict[str, Any]) -> Role:
    v = obj.get("role")
    if v is None:
        raise DecodeError("missing_field", "required field `role` is missing")
    role = _ROLES.get(v) if isinstance(v, str) else None
    if role is None:
        raise DecodeError(
            "bad_role", f"`role` must be canary or baseline (stable, primary), got {str(v)[:40]!r}"
        )
    return role


def load_object(raw: bytes | str, max_bytes: int) -> dict[str, Any]:
    if len(raw) > max_bytes:
        raise DecodeError("oversized", f"record is {len(raw)} bytes; the limit is {max_bytes}")
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "infinity" in str(exc):  # valid JSON syntax, but a number no float can hold
            raise DecodeError("non_finite", "a number in the record is out of range") from None
        raise DecodeError("not_json", f"not valid JSON ({str(exc)[:80]})") from None
    if not isinstance(obj, dict):
        raise DecodeError("not_object", "a record must be a JSON object")
    return obj


def sample_from(obj: dict[str, Any], default_namespace: str) -> Sample:
    # The common, well-formed record takes the fast path (exact type checks, no helper calls);
    # anything unusual falls through to the careful checks that name the broken rule.
    try:
        ts = obj[_TS]
        service = obj[_SERVICE]
        role = _ROLES[obj[_ROLE]]
        signal = obj[_SIGNAL]
        value = obj[_VALUE]
        kind = _KIND_OR_NONE[obj.get(_KIND)]
    except (KeyError, TypeError):  # a field is missing, or `role` or `kind` is not a name
        return _sample_checked(obj, default_namespace)
    # obj.get each time: three method calls cost less than one bound method
    namespace = obj.get(_NAMESPACE)
    count = obj.get(_COUNT)
    if (
        type(ts) is float
        and 0.0 <= ts < _INF
        and type(service) is str
        and service
        and type(signal) is str
        and signal
        and type(value) is float
        and (namespace is None or (type(namespace) is str and namespace))
        and (count is None or (type(count) is int and count >= 0))
    ):
        labels = obj.get(_LABELS)
        if labels is None:
            labels = {}
        elif type(labels) is dict:
            for v in labels.values():
                if type(v) is not str:
                    return _sample_checked(obj, default_namespace)
        else:
            return _sample_checked(obj, default_namespace)
        # field by field: the same Sample as its constructor builds (a slots dataclass with
        # nothing after __init__), for a third of the cost of the call through type.__call__
        sample = _new(Sample)
        sample.ts = ts
        sample.service = service
        sample.namespace = namespace or default_namespace
        sample.role = role
        sample.signal = signal
        sample.value = value
        sample.kind = kind
        sample.count = count
        sample.labels = labels
        return sample
    return _sample_checked(obj, default_namespace)


def _head(obj: dict[str, Any], default_namespace: str) -> tuple[float, str, str, Role]:
    """``ts``, ``service``, ``namespace`` and ``role``: the fields samples and logs share."""
    if "ts" not in obj:
        raise DecodeError("missing_field", "required field `ts` is missing")
    ts = parse_ts(obj["ts"])
    service = _str(obj, "service")
    namespace = _str(obj, "namespace", required=False) or default_namespace
    return ts, service, namespace, _role(obj)  # type: ignore[return-value]


def _sample_checked(obj: dict[str, Any], default_namespace: str) -> Sample:
    ts, service, namespace, role = _head(obj, default_namespace)
    signal = _str(obj, "signal")
    if "value" not in obj:
        raise DecodeError("missing_field", "required field `value` is missing")
    value = obj["value"]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DecodeError("wrong_type", "`value` must be a number")
    value = float(value)
    if not math.isfinite(value):
        raise DecodeError("non_finite", "`value` must be finite")
    kind = None
    if (k := obj.get("kind")) is not None:
        kind = _KINDS.get(k) if isinstance(k, str) else None
        if kind is None:
            raise DecodeError("wrong_type", f"`kind` must be one of {', '.join(_KINDS)}")
    count = obj.get("count")
    if count is not None:
        if isinstance(count, bool) or not isinstance(count, int | float):
            raise DecodeError("wrong_type", "`count` must be an integer")
        if isinstance(count, float):
            if not count.is_integer():
                raise DecodeError("wrong_type", "`count` must be an integer")
            count = int(count)
        if count < 0:
            raise DecodeError("negative_count", "`count` must be >= 0")
    return Sample(ts, service, namespace, role, signal, value, kind, count, _labels(obj))  # type: ignore[arg-type]


def log_from(obj: dict[str, Any], default_namespace: str) -> LogRecord:
    ts, service, namespace, role = _head(obj, default_namespace)
    level = _str(obj, "level")
    message = obj.get("message")
    if not isinstance(message, str):
        raise DecodeError(
            "missing_field" if message is None else "wrong_type", "`message` must be a string"
        )
    return LogRecord(ts, service, namespace, role, level, message, _labels(obj))  # type: ignore[arg-type]


class NativeFormat:
    """``type: native``."""

    type_name = "native"

    def __init__(self, default_namespace: str = "default", max_bytes: int = 65536) -> None:
        self.default_namespace = default_namespace
        self.max_bytes = max_bytes

    def decode(self, raw: bytes) -> list[Sample | LogRecord]:
        """The records of ``raw``: one JSON object, or a batch, a JSON array of them checked one
        by one (:class:`~detector.sources.base.BatchErrors` when some cannot be used)."""
        if len(raw) <= self.max_bytes:
            try:
                obj: Any = _loads(raw)
            except orjson.JSONDecodeError:
                obj = None
            if type(obj) is dict:
                return [self._record(obj)]
            if type(obj) is list:
                return self._batch(obj)
        return [self.decode_one(raw)]  # names the broken rule

    def decode_one(self, raw: bytes | str) -> Sample | LogRecord:
        """The record of ``raw``, one JSON object (a batch is :meth:`decode`'s), or the
        :class:`DecodeError`. ``raw`` may also be a ``str`` of ASCII only: the same bytes, which
        orjson reads in place (a caller holding text saves the copy that encoding makes); any
        other text must be encoded first, since ``max_bytes`` counts bytes."""
        if len(raw) <= self.max_bytes:
            # the common case, a well-formed metric sample, without the checks' calls; anything
            # else is parsed again below, where the broken rule is named
            try:
                obj: Any = _loads(raw)
            except orjson.JSONDecodeError:
                obj = None
            if type(obj) is dict and _SIGNAL in obj:
                return sample_from(obj, self.default_namespace)
        return self._record(load_object(raw, self.max_bytes))

    def _record(self, obj: dict[str, Any]) -> Sample | LogRecord:
        if "signal" not in obj and ("message" in obj or "level" in obj):
            return log_from(obj, self.default_namespace)
        return sample_from(obj, self.default_namespace)

    def _batch(self, items: list[Any]) -> list[Sample | LogRecord]:
        if not items:
            raise DecodeError("empty_batch", "a batch (a JSON array) must hold a record or more")
        out: list[Sample | LogRecord] = []
        rejected: list[Rejected] = []
        for i, item in enumerate(items):
            try:
                if type(item) is not dict:
                    raise DecodeError("not_object", "each record of a batch must be a JSON object")
                out.append(self._record(item))
            except DecodeError as err:
                rejected.append(Rejected(i, orjson.dumps(item), err))
        if rejected:
            raise BatchErrors(out, rejected, len(items))
        return out
