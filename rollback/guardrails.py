"""Guardrails on rollback actions: pure rules over the history of past actions.

Who calls this: :class:`rollback.dispatch.Dispatcher`, before every action, with the history
rebuilt from the ledger at start and extended as it acts. What it promises (property-tested in
``tests/rollback/test_guardrails.py``):

- at most one *enforced* action per rollout revision (key ``namespace/service/revision``), and
  at most one dry-run record per revision; a dry-run does not block a later enforced action;
- after an enforced action in a namespace, none in the same namespace for ``cooldown_seconds``;
- at most ``max_actions_per_hour`` enforced actions per namespace in any 3600 s window;
- dry-runs touch nothing, so the cooldown and the hourly cap do not count or limit them;
- a history entry in the future (clock stepped back) counts as recent: the rules err towards
  doing nothing.

The emergency switch (:func:`emergency_switch_on`) is read before each action, so turning it on
takes effect without a restart: while the file named by ``emergency_switch_file`` exists, or the
environment variable named by ``emergency_switch_env`` is set to anything but empty, ``0``,
``false`` or ``no``, every target runs as dry-run. The variable is read from the process
environment, so it only changes on restart; the file is the switch to flip at runtime.

>>> limits = Limits(cooldown_seconds=60, max_actions_per_hour=2)
>>> first = PastAction("shop/web/7", "shop", at=1000.0, mode="enforce")
>>> evaluate("shop/web/7", "shop", "enforce", 1500.0, [first], limits).allowed
False
>>> evaluate("shop/api/3", "shop", "enforce", 1030.0, [first], limits).reason
'cooldown: the last action in namespace shop was 30 s ago (cooldown 60 s)'
>>> evaluate("shop/api/3", "shop", "enforce", 1100.0, [first], limits).allowed
True
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from config.rollback import GuardrailSettings

Mode = Literal["enforce", "dry-run"]
HOUR = 3600.0
_OFF = frozenset({"", "0", "false", "no", "off"})


@dataclass(frozen=True, slots=True)
class PastAction:
    """An action attempted (or dry-run) at wall-clock time ``at``."""

    key: str
    namespace: str
    at: float
    mode: Mode


@dataclass(frozen=True, slots=True)
class Limits:
    cooldown_seconds: float
    max_actions_per_hour: int

    @classmethod
    def from_settings(cls, settings: GuardrailSettings) -> Limits:
        return cls(settings.cooldown_seconds, settings.max_actions_per_hour)


@dataclass(frozen=True, slots=True)
class GuardVerdict:
    allowed: bool
    reason: str


ALLOWED = GuardVerdict(True, "allowed")


def evaluate(
    key: str,
    namespace: str,
    mode: Mode,
    now: float,
    history: Iterable[PastAction],
    limits: Limits,
) -> GuardVerdict:
    """May an action in ``mode`` on rollout ``key`` in ``namespace`` start at ``now``?"""
    recent: list[PastAction] = []
    for past in history:
        if past.key == key and past.mode == mode:
            what = "acted on" if mode == "enforce" else "dry-ran"
            return GuardVerdict(False, f"already {what} rollout revision {key}")
        if past.mode == "enforce" and past.namespace == namespace and now - past.at < HOUR:
            recent.append(past)
    if mode == "dry-run":
        return ALLOWED
    if recent:
        last = max(p.at for p in recent)
        if now - last < limits.cooldown_seconds:
            return GuardVerdict(
                False,
                f"cooldown: the last action in namespace {namespace} was "
                f"{max(now - last, 0):.0f} s ago (cooldown {limits.cooldown_seconds:.0f} s)",
            )
    if len(recent) >= limits.max_actions_per_hour:
        return GuardVerdict(
            False,
            f"hourly cap: {len(recent)} action(s) in namespace {namespace} in the last hour "
            f"(max {limits.max_actions_per_hour})",
        )
    return ALLOWED


def effective_mode(configured: Mode, emergency: bool) -> Mode:
    """The emergency switch wins over the per-service mode."""
    return "dry-run" if emergency else configured


def emergency_switch_on(
    settings: GuardrailSettings,
    *,
    environ: Mapping[str, str] | None = None,
    exists: Callable[[str], bool] = os.path.exists,
) -> bool:
    """Whether the emergency switch is on now (see the module docstring)."""
    env = os.environ if environ is None else environ
    if settings.emergency_switch_env:
        value = env.get(settings.emergency_switch_env)
        if value is not None and value.strip().lower() not in _OFF:
            return True
    return bool(settings.emergency_switch_file and exists(settings.emergency_switch_file))


def history_from_ledger(records: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[PastAction]:
    """Past actions from the ledger's records: every ``attempt`` counts, whatever its outcome,
    so a restarted worker never repeats an action it may already have sent."""
    out: list[PastAction] = []
    for key, recs in records.items():
        for rec in recs:
            if rec.get("record") != "action" or rec.get("phase") != "attempt":
                continue
            mode: Mode = "dry-run" if rec.get("mode") == "dry-run" else "enforce"
            namespace = str(rec.get("namespace") or key.split("/", 1)[0])
            out.append(PastAction(key, namespace, float(rec.get("at", 0.0)), mode))
    return out
