"""The outbox keeps entries in order per sink, across reopen, and refuses a second user."""

from __future__ import annotations

from pathlib import Path

import pytest

from detector.core.types import Verdict
from rollback.outbox import Outbox, OutboxLockedError
from rollback.sinks.base import Alert, AlertEvent
from rollback.sinks.fake import sample_decision, sample_outcome


def alert(event: AlertEvent = AlertEvent.TRIGGER, revision: str = "r1") -> Alert:
    d = sample_decision(revision=revision)
    return Alert(
        event, d, d.severity, f"{event.value} {revision}", sample_outcome(), (("G", "https://g/x"),)
    )


def test_alerts_round_trip_through_the_file(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite3")
    a = alert()
    ob.write([("pd", a)])
    got = ob.next_pending("pd")
    ob.close()
    assert got is not None
    assert got.alert == a


def test_entries_come_out_in_order_per_sink_and_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "state" / "o.sqlite3"
    ob = Outbox(path)
    ob.write([("pd", alert(AlertEvent.TRIGGER)), ("am", alert(AlertEvent.TRIGGER))])
    ob.write([("pd", alert(AlertEvent.RESOLVE))])
    first = ob.next_pending("pd")
    assert first is not None
    assert first.alert.event is AlertEvent.TRIGGER
    ob.record_failure(first.id, "503")
    ob.close()

    ob = Outbox(path)  # a restart
    assert ob.pending_counts() == {"pd": 2, "am": 1}
    again = ob.next_pending("pd")
    assert again is not None
    assert (again.id, again.attempts) == (first.id, 1)
    ob.mark_delivered(again.id)
    nxt = ob.next_pending("pd")
    assert nxt is not None
    assert nxt.alert.event is AlertEvent.RESOLVE
    ob.mark_rejected(nxt.id, "400 invalid")
    assert ob.next_pending("pd") is None
    assert ob.pending_counts() == {"am": 1}
    states = [(e["sink"], e["state"], e["last_error"]) for e in ob.entries()]
    assert states == [
        ("pd", "delivered", "503"),
        ("am", "pending", None),
        ("pd", "rejected", "400 invalid"),
    ]
    ob.close()


def test_a_second_outbox_on_the_same_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    ob = Outbox(path)
    with pytest.raises(OutboxLockedError):
        Outbox(path)
    ob.close()
    Outbox(path).close()  # released on close


def test_open_alert_book(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite3")
    a1, a2 = alert(revision="r1"), alert(revision="r2")
    other = Alert(AlertEvent.TRIGGER, sample_decision(service="cart"), a1.severity, "x")
    ob.write([], opened=[("pd", "k1", a1), ("pd", "k2", a2), ("am", "k1", a1), ("pd", "k3", other)])
    assert {o.ident for o in ob.open_alerts(sink="pd")} == {"k1", "k2", "k3"}
    assert {(o.sink, o.ident) for o in ob.open_alerts(namespace="shop", service="checkout")} == {
        ("pd", "k1"),
        ("pd", "k2"),
        ("am", "k1"),
    }
    ob.close_open("pd", "k1")
    assert {o.ident for o in ob.open_alerts(sink="pd")} == {"k2", "k3"}
    assert ob.open_alerts(sink="am")[0].alert == a1
    ob.close()


def test_prune_forgets_only_finished_entries(tmp_path: Path) -> None:
    now = [1000.0]
    ob = Outbox(tmp_path / "o.sqlite3", clock=lambda: now[0])
    ob.write([("pd", alert()), ("pd", alert(AlertEvent.RESOLVE))])
    first = ob.next_pending("pd")
    assert first is not None
    ob.mark_delivered(first.id)
    now[0] = 5000.0
    assert ob.prune(older_than=4000.0) == 1
    assert [e["state"] for e in ob.entries()] == ["pending"]
    ob.close()


def test_a_failed_write_leaves_nothing_behind(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite3")

    class Boom(Alert):
        def to_record(self) -> dict[str, object]:
            raise RuntimeError("cannot serialise")

    bad = Boom(AlertEvent.TRIGGER, sample_decision(verdict=Verdict.NO_DATA), alert().severity, "x")
    with pytest.raises(RuntimeError):
        ob.write([("pd", alert()), ("pd", bad)])
    assert ob.entries() == []
    ob.close()
