"""Which alerts a decision means, for which sinks: the router's pure planning step.

Called by :meth:`rollback.alerting.AlertRouter.notify` with the decision, the rollback outcome,
the alerts still open for the same service (from the outbox's book) and the service's
:class:`Route`. No I/O, no clock: the same inputs always give the same plan. The rules:

- a failed rollback (``outcome.status == failed``) triggers a *critical* "rollback failed"
  alert, whatever the decision's own severity;
- ``rollback`` and ``alert`` decisions trigger an alert with the decision's severity, on each
  routed sink whose minimum severity (and the route's) it meets; a trigger already open on a
  sink with the same outcome is not sent again (a re-delivered decision does not page twice);
- a rollback action that was attempted (done, dry run, failed) also produces a ``change`` alert
  (PagerDuty Change Event) on every routed sink, so the incident timeline shows it;
- ``recovered`` resolves the open alerts of that revision whose verdict it ``recovers`` (all of
  them when it names none: the rollout was replaced), and, if any was open, adds a
  ``change`` alert saying so; any decision resolves the open alerts of *older* revisions of
  the same service (the rollout was replaced);
- ``none`` decisions that are not ``recovered`` trigger nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from string import Formatter
from urllib.parse import quote

from config.alerting import LinkTemplate
from detector.core.types import Action, Decision, Severity, Verdict
from rollback.outbox import OpenAlert
from rollback.sinks import render
from rollback.sinks.base import Alert, AlertEvent
from rollback.targets.base import ActionOutcome, OutcomeStatus

ROLLBACK_FAILED_SUFFIX = "#rollback-failed"
_ACTED = (OutcomeStatus.DONE, OutcomeStatus.DRY_RUN, OutcomeStatus.FAILED)


@dataclass(frozen=True, slots=True)
class Route:
    """Where one service's alerts go: sink names, the least severe decision alerted, links."""

    sinks: tuple[str, ...]
    min_severity: Severity = Severity.INFO
    links: tuple[LinkTemplate, ...] = ()


@dataclass(slots=True)
class Plan:
    """What to write to the outbox: ``entries`` in delivery order, and the open-alert book
    changes (``opened``: sink, ident, alert; ``closed``: sink, ident)."""

    entries: list[tuple[str, Alert]] = field(default_factory=list)
    opened: list[tuple[str, str, Alert]] = field(default_factory=list)
    closed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.entries or self.opened or self.closed)


def ident_of(alert: Alert) -> str:
    """The open-alert identity: the dedup key, suffixed for a rollback-failed alert (which is
    its own alert in Alertmanager, ``CanaryRollbackFailed``)."""
    return alert.dedup_key + (ROLLBACK_FAILED_SUFFIX if alert.rollback_failed else "")


def render_links(templates: Sequence[LinkTemplate], d: Decision) -> tuple[tuple[str, str], ...]:
    values = {
        "service": quote(d.service, safe=""),
        "namespace": quote(d.namespace, safe=""),
        "revision": quote(d.revision, safe=""),
        "verdict": quote(d.verdict.value, safe=""),
    }
    out = []
    for t in templates:
        names = {f for _, f, _, _ in Formatter().parse(t.href) if f}
        out.append((t.text, t.href.format(**{n: values[n] for n in names})))
    return tuple(out)


def _meets(severity: Severity, *minimums: Severity | None) -> bool:
    return all(m is None or severity.rank <= m.rank for m in minimums)


def _same_outcome(a: ActionOutcome | None, b: ActionOutcome | None) -> bool:
    if a is None or b is None:
        return a is b
    return json.dumps(a.to_record(), sort_keys=True) == json.dumps(b.to_record(), sort_keys=True)


def _resolve(o: OpenAlert, why: str) -> Alert:
    a = o.alert
    return Alert(
        AlertEvent.RESOLVE,
        a.decision,
        a.severity,
        render.resolve_summary(a.decision, why),
        a.outcome,
        a.links,
    )


def plan(
    d: Decision,
    outcome: ActionOutcome | None,
    opens: Sequence[OpenAlert],
    route: Route,
    sink_min: Mapping[str, Severity] | None = None,
) -> Plan:
    """The alerts ``d`` means (see the module docstring for the rules)."""
    p = Plan()
    sink_min = sink_min or {}
    links = render_links(route.links, d)
    for o in opens:
        od = o.alert.decision
        if (od.namespace, od.service) != (d.namespace, d.service):
            continue
        if od.revision != d.revision and od.ts <= d.ts:
            why = f"revision {od.revision} was replaced by revision {d.revision}"
            p.entries.append((o.sink, _resolve(o, why)))
            p.closed.append((o.sink, o.ident))
    if d.verdict is Verdict.RECOVERED:
        recovered_on: list[str] = []
        for o in opens:
            od = o.alert.decision
            same = (od.namespace, od.service, od.revision) == (d.namespace, d.service, d.revision)
            # a recovery names the episode it ends (anomaly, no data); none named: all of them
            if same and d.recovers in (None, od.verdict):
                p.entries.append((o.sink, _resolve(o, f"recovered: {d.reason}")))
                p.closed.append((o.sink, o.ident))
                if o.sink not in recovered_on:
                    recovered_on.append(o.sink)
        for sink in recovered_on:
            change = Alert(
                AlertEvent.CHANGE, d, d.severity, render.change_summary(d, None), None, links
            )
            p.entries.append((sink, change))
        return p
    failed = outcome is not None and outcome.status is OutcomeStatus.FAILED
    if d.action is Action.NONE and not failed:
        return p
    severity = Severity.CRITICAL if failed else d.severity
    alert = Alert(
        AlertEvent.TRIGGER, d, severity, render.trigger_summary(d, outcome), outcome, links
    )
    ident = ident_of(alert)
    already = {(o.sink, o.ident): o.alert for o in opens}
    for sink in route.sinks:
        prior = already.get((sink, ident))
        if prior is not None and _same_outcome(prior.outcome, outcome):
            continue  # the same decision again (a redelivery): do not page or mark twice
        if _meets(severity, route.min_severity, sink_min.get(sink)):
            p.entries.append((sink, alert))
            p.opened.append((sink, ident, alert))
        if outcome is not None and outcome.status in _ACTED:
            summary = render.change_summary(d, outcome)
            p.entries.append((sink, Alert(AlertEvent.CHANGE, d, severity, summary, outcome, links)))
    return p
