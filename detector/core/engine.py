"""The decision core: samples and log records in arrival order, decisions out.

Who calls this: the faust agent (``detector.service``) and ``replay`` (``detector.replay``), with
the same records in the same order per service, so both decide the same. What it promises:

- pure: no I/O, no wall clock; the only time is the records' event time;
- a sample more than ``allowed_lateness_seconds`` behind the newest sample of its service is
  counted and dropped; anything within that is used in its right place (canary and baseline are
  paired by event time, not by arrival);
- the state of a service (:class:`ServiceState`) pickles exactly, so a checkpoint restored after a
  crash continues as if nothing happened;
- records of one service never affect another service's decisions.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field

from config.detection import DetectionSettings
from config.schema import SentinelConfig
from detector.core import policy
from detector.core.logs import LogState, add_log
from detector.core.policy import PolicyState
from detector.core.signals import Check, SignalState, evict_all, link_median
from detector.core.types import Decision, LogRecord, Role, Sample, SignalKind

_CANARY = Role.CANARY
_SETTINGS_FIELDS = DetectionSettings.model_fields.keys()
_THROUGHPUT = SignalKind.THROUGHPUT
_NAN = math.nan


@dataclass(slots=True)
class ServiceState:
    """All the engine knows about one service. ``offsets`` holds, per source partition
    (``topic@partition``), the offset of the last record folded in (empty in replay): the live
    service skips records at or before it after a restart, which is what keeps a checkpoint and
    the consumer position consistent."""

    service: str
    namespace: str
    policy: PolicyState = field(default_factory=PolicyState)
    signals: dict[str, SignalState] = field(default_factory=dict)
    logs: LogState = field(default_factory=LogState)
    max_ts: float = -math.inf
    last_tick: float = -math.inf
    late: int = 0
    stale: int = 0
    offsets: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class EngineStats:
    samples: int = 0
    logs: int = 0
    late: int = 0
    stale: int = 0
    decisions: int = 0


def canary_weight(label: str | None) -> float:
    """The canary's traffic percent from its ``weight`` label; NaN when absent or unusable.
    Who calls this: :meth:`Engine._fold` and the pipeline's written-out path for common
    samples, for a canary sample of a throughput signal."""
    if not label:
        return math.nan
    try:
        w = float(label)
    except ValueError:
        return math.nan
    return w if 0.0 < w < 100.0 else math.nan


class Engine:
    """Holds every service's state and folds records into it.

    >>> from config.schema import SentinelConfig
    >>> from detector.core.types import Role, Sample
    >>> e = Engine(SentinelConfig())
    >>> e.process_sample(Sample(0.0, "web", "default", Role.CANARY, "error_rate", 0.0, count=10))
    []
    """

    def __init__(self, config: SentinelConfig) -> None:
        self.config = config
        self.interval = config.sample_interval_seconds
        self.lateness = config.allowed_lateness_seconds
        self.services: dict[str, ServiceState] = {}
        self.stats = EngineStats()
        # one object per distinct settings value: every signal holds its settings, and each
        # copy of the pydantic model takes about 2 KB (benchmarks.state_size)
        self._settings: dict[str, DetectionSettings] = {}

    # -- state -------------------------------------------------------------------------------
    def state(self, service: str, namespace: str | None = None) -> ServiceState:
        st = self.services.get(service)
        if st is None:
            ns = namespace or self.config.namespace_of(service)
            st = self.services[service] = ServiceState(service, ns)
        return st

    def restore(self, state: ServiceState) -> None:
        """Hold a state restored from a checkpoint. Its signals keep the settings they were
        created with; equal settings (and signal names) are shared with every other service's."""
        for sig in state.signals.values():
            settings = sig.settings
            if settings.__dict__.keys() < _SETTINGS_FIELDS:
                # written before a setting existed: it takes its default
                settings = DetectionSettings.model_validate(settings.__dict__)
            sig.settings = self._shared(settings)
            sig.name = sys.intern(sig.name)
            sig.derive()
        for sig in state.signals.values():
            link_median(state.signals, sig)
        self.services[state.service] = state

    def _shared(self, settings: DetectionSettings) -> DetectionSettings:
        return self._settings.setdefault(settings.model_dump_json(), settings)

    # -- records -----------------------------------------------------------------------------
    def process(self, record: Sample | LogRecord) -> list[Decision]:
        if isinstance(record, Sample):
            return self.process_sample(record)
        return self.process_log(record)

    def process_log(self, r: LogRecord) -> list[Decision]:
        self.stats.logs += 1
        st = self.state(r.service, r.namespace)
        if self._late(st, r.ts):
            return []
        out: list[Decision] = []
        for sample in add_log(st.logs, r, self.interval):
            out += self._fold(st, sample)
        return out

    def process_sample(self, s: Sample) -> list[Decision]:
        stats = self.stats
        stats.samples += 1
        st = self.services.get(s.service) or self.state(s.service, s.namespace)
        ts = s.ts
        max_ts = st.max_ts
        if ts < max_ts - self.lateness:  # _late, inlined on the hot path
            st.late += 1
            stats.late += 1
            return []
        if ts > max_ts:
            st.max_ts = ts
        return self._fold(st, s)

    def _late(self, st: ServiceState, ts: float) -> bool:
        if ts < st.max_ts - self.lateness:
            st.late += 1
            self.stats.late += 1
            return True
        if ts > st.max_ts:
            st.max_ts = ts
        return False

    def _fold(self, st: ServiceState, s: Sample) -> list[Decision]:
        out: list[Decision] = []
        # the policy the record arrived under: when the record starts a new revision, its own
        # check and this tick still go to the replaced state (the decisions depend on that)
        pol = st.policy
        role = s.role
        labels = s.labels
        if role is _CANARY and labels:
            rev = labels.get("revision")
            if rev is not None and rev != pol.revision:
                if s.ts < pol.revision_since:
                    st.stale += 1  # a late record of the revision that was replaced
                    self.stats.stale += 1
                    return out
                out += self._new_revision(st, rev, s.ts)
        sig = st.signals.get(s.signal)
        if sig is None:
            sig = st.signals[s.signal] = self._new_signal(s)
            link_median(st.signals, sig)
        weight = _NAN
        if role is _CANARY and labels and sig.kind is _THROUGHPUT:
            weight = canary_weight(labels.get("weight"))
        check = sig.add(s.ts, role, s.value, s.count, self.interval, weight)
        if check is not None:
            out += self.decide(st, pol, sig, check)
        elif st.max_ts - st.last_tick >= self.interval:
            out += self.tick(st, pol)
        if out:
            self.stats.decisions += len(out)
        return out

    def decide(
        self, st: ServiceState, pol: PolicyState, sig: SignalState, check: Check
    ) -> list[Decision]:
        """The policy's decision on ``check`` (what a sample of ``st`` just folded into ``sig``
        gave), then the service's tick when one is due. Who calls this: :meth:`_fold` and the
        pipeline's written-out path for common samples; the caller counts the decisions in
        ``stats``."""
        out: list[Decision] = []
        # the decision happens at the service's event-time clock, not at the (possibly late)
        # pair's own time
        check.ts = st.max_ts
        d = policy.on_check(pol, st.service, st.namespace, sig, check)
        if d is not None:
            out.append(d)
        if st.max_ts - st.last_tick >= self.interval:
            out += self.tick(st, pol)
        return out

    def _new_signal(self, s: Sample) -> SignalState:
        kind = s.kind or self.config.kind_of(s.service, s.signal) or SignalKind.GAUGE
        settings = self._shared(self.config.effective(s.service, s.signal))
        horizon = int(settings.rollout_duration_seconds / self.interval) + 1
        return SignalState(sys.intern(s.signal), kind, settings, horizon, self.interval)

    def tick(self, st: ServiceState, pol: PolicyState) -> list[Decision]:
        """Event-time housekeeping, at most once per sample interval of a service: due when
        ``st.max_ts - st.last_tick >= interval`` after a sample. Who calls this: :meth:`_fold`,
        :meth:`decide` and the pipeline's written-out path; the caller counts the decisions in
        ``stats``."""
        now = st.last_tick = st.max_ts
        if not evict_all(st.signals.values(), now - self.lateness - self.interval):
            return []  # on_tick skips every signal the canary never reported: nothing to do
        return policy.on_tick(pol, st.service, st.namespace, st.signals, now, self.interval)

    def _new_revision(self, st: ServiceState, rev: str, ts: float) -> list[Decision]:
        pol = st.policy
        out: list[Decision] = []
        first = pol.revision == "unknown" and not any(
            sig.last_seen[0] > -math.inf for sig in st.signals.values()
        )
        if not first:
            d = policy.replaced(pol, st.service, st.namespace, ts)
            if d is not None:
                out.append(d)
            for sig in st.signals.values():
                sig.reset_canary()
        st.policy = PolicyState(revision=rev, revision_since=ts)
        return out
