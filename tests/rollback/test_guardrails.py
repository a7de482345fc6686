"""Unit and property tests of rollback.guardrails (pure rules)."""

from __future__ import annotations

import doctest
import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

import rollback.guardrails as guardrails
from config.rollback import GuardrailSettings
from rollback.guardrails import (
    HOUR,
    Limits,
    PastAction,
    effective_mode,
    emergency_switch_on,
    evaluate,
    history_from_ledger,
)

LIMITS = Limits(cooldown_seconds=300, max_actions_per_hour=3)


def test_doctests() -> None:
    assert doctest.testmod(guardrails).failed == 0


def test_one_enforced_action_per_revision_whatever_the_time() -> None:
    past = [PastAction("shop/web/7", "shop", 0.0, "enforce")]
    v = evaluate("shop/web/7", "shop", "enforce", 10 * HOUR, past, LIMITS)
    assert not v.allowed
    assert "already acted on rollout revision shop/web/7" in v.reason


def test_dry_run_does_not_block_enforce_nor_count_towards_limits() -> None:
    past = [PastAction(f"shop/s{i}/1", "shop", 100.0, "dry-run") for i in range(10)]
    assert evaluate("shop/s1/1", "shop", "enforce", 101.0, past, LIMITS).allowed
    # ... but a second dry-run of the same revision is refused (no duplicate records).
    assert not evaluate("shop/s1/1", "shop", "dry-run", 101.0, past, LIMITS).allowed


def test_cooldown_and_cap_are_per_namespace() -> None:
    past = [PastAction("shop/web/1", "shop", 1000.0, "enforce")]
    assert not evaluate("shop/api/1", "shop", "enforce", 1100.0, past, LIMITS).allowed
    assert evaluate("pay/api/1", "pay", "enforce", 1100.0, past, LIMITS).allowed
    assert evaluate("shop/api/1", "shop", "enforce", 1300.0, past, LIMITS).allowed


def test_hourly_cap() -> None:
    past = [PastAction(f"shop/s{i}/1", "shop", 1000.0 + 400 * i, "enforce") for i in range(3)]
    v = evaluate("shop/x/1", "shop", "enforce", 2900.0, past, LIMITS)
    assert not v.allowed
    assert v.reason.startswith("hourly cap: 3 action(s) in namespace shop")
    assert evaluate("shop/x/1", "shop", "enforce", 1000.0 + HOUR, past, LIMITS).allowed


def test_zero_cap_never_enforces_but_dry_run_still_allowed() -> None:
    limits = Limits(cooldown_seconds=0, max_actions_per_hour=0)
    assert not evaluate("a/b/c", "a", "enforce", 0.0, [], limits).allowed
    assert evaluate("a/b/c", "a", "dry-run", 0.0, [], limits).allowed


def test_entry_in_the_future_counts_as_recent() -> None:
    past = [PastAction("shop/web/1", "shop", 5000.0, "enforce")]
    assert not evaluate("shop/api/1", "shop", "enforce", 1000.0, past, LIMITS).allowed


def test_effective_mode() -> None:
    assert effective_mode("enforce", emergency=True) == "dry-run"
    assert effective_mode("enforce", emergency=False) == "enforce"
    assert effective_mode("dry-run", emergency=False) == "dry-run"


def test_emergency_switch_file_and_env() -> None:
    s = GuardrailSettings(emergency_switch_file="/switch", emergency_switch_env="SWITCH")
    files: set[str] = set()
    assert not emergency_switch_on(s, environ={}, exists=files.__contains__)
    files.add("/switch")
    assert emergency_switch_on(s, environ={}, exists=files.__contains__)
    files.clear()
    for off in ("", "0", "false", "No"):
        assert not emergency_switch_on(s, environ={"SWITCH": off}, exists=files.__contains__)
    assert emergency_switch_on(s, environ={"SWITCH": "1"}, exists=files.__contains__)
    disabled = GuardrailSettings(emergency_switch_file=None, emergency_switch_env=None)
    assert not emergency_switch_on(disabled, environ={"SWITCH": "1"}, exists=lambda _: True)


def test_history_from_ledger_counts_attempts_only() -> None:
    records = {
        "shop/web/7": [
            {"record": "action", "phase": "attempt", "namespace": "shop", "at": 5.0,
             "mode": "enforce"},
            {"record": "action", "phase": "outcome", "status": "failed", "at": 6.0},
        ],
        "shop/api/2": [{"record": "action", "phase": "refused", "at": 7.0}],
        "shop/db/1": [{"record": "action", "phase": "attempt", "at": 8.0, "mode": "dry-run"}],
    }  # fmt: skip
    assert history_from_ledger(records) == [
        PastAction("shop/web/7", "shop", 5.0, "enforce"),
        PastAction("shop/db/1", "shop", 8.0, "dry-run"),
    ]


# --- properties ---------------------------------------------------------------------------

events = st.lists(
    st.tuples(
        st.sampled_from(["a", "b"]),  # namespace
        st.integers(0, 5),  # service
        st.integers(0, 3),  # revision
        st.floats(0, 900, allow_nan=False),  # time since the previous event
        st.sampled_from(["enforce", "enforce", "dry-run"]),
    ),
    max_size=60,
)
limits_st = st.builds(Limits, st.floats(0, 1200), st.integers(0, 5))


def _simulate(evs: list[tuple[str, int, int, float, str]], limits: Limits) -> list[PastAction]:
    history: list[PastAction] = []
    now = 0.0
    for ns, svc, rev, dt, mode in evs:
        now += dt
        key = f"{ns}/s{svc}/{rev}"
        if evaluate(key, ns, mode, now, history, limits).allowed:  # type: ignore[arg-type]
            history.append(PastAction(key, ns, now, mode))  # type: ignore[arg-type]
    return history


@settings(max_examples=300, deadline=None)
@given(events, limits_st)
def test_property_never_two_actions_per_revision(
    evs: list[tuple[str, int, int, float, str]], limits: Limits
) -> None:
    acted = [(p.key, p.mode) for p in _simulate(evs, limits)]
    assert len(acted) == len(set(acted))


@settings(max_examples=300, deadline=None)
@given(events, limits_st)
def test_property_cooldown(evs: list[tuple[str, int, int, float, str]], limits: Limits) -> None:
    enforced = [p for p in _simulate(evs, limits) if p.mode == "enforce"]
    for ns in ("a", "b"):
        times = [p.at for p in enforced if p.namespace == ns]
        assert all(t2 - t1 >= limits.cooldown_seconds for t1, t2 in itertools.pairwise(times))


@settings(max_examples=300, deadline=None)
@given(events, limits_st)
def test_property_hourly_cap(evs: list[tuple[str, int, int, float, str]], limits: Limits) -> None:
    enforced = [p for p in _simulate(evs, limits) if p.mode == "enforce"]
    for p in enforced:
        window = [q for q in enforced if q.namespace == p.namespace and 0 <= p.at - q.at < HOUR]
        assert len(window) <= limits.max_actions_per_hour
