"""An alert's lifecycle, one scored hour at a time (pure: no I/O, no clock).

A device's alert fires after `fire_after` consecutive anomalous hours, is told once when it fires, again every
`repeat` while it keeps firing (until acknowledged), and once when it resolves after `resolve_after` normal hours.
Quiet hours hold back what would be told in them until the first hour outside them (a resolution that comes
first replaces a held-back firing: nobody needs to be woken for a problem that is gone); a daily cap per device
drops what is beyond it. Time is the scored hour's end, never the wall clock, so replaying the same hours gives
the same notifications — which is what lets the service make each one exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta


@dataclass(frozen=True)
class AlertConfig:
    fire_after: int = 1
    resolve_after: int = 1
    repeat: timedelta = timedelta(hours=4)
    quiet_start: int | None = None  # hour of day (UTC) quiet hours begin, e.g. 22
    quiet_end: int | None = None  # hour of day they end, e.g. 7 (exclusive)
    daily_cap: int = 10  # notifications per device and UTC day

    def quiet(self, at: datetime) -> bool:
        if self.quiet_start is None or self.quiet_end is None or self.quiet_start == self.quiet_end:
            return False
        hour = at.hour
        if self.quiet_start < self.quiet_end:
            return self.quiet_start <= hour < self.quiet_end
        return hour >= self.quiet_start or hour < self.quiet_end


@dataclass(frozen=True)
class State:
    """A device's alerting state between hours. `alert` is the open alert's number (1, 2, … per device) or None."""

    anomalous_run: int = 0
    normal_run: int = 0
    alert: int | None = None
    last_told: datetime | None = None
    told_fired: bool = False  # the open alert's firing has been told
    acked: bool = False
    held: tuple[tuple[int, str], ...] = ()  # (alert, kind) kept back by quiet hours: "fired" or "resolved"
    alerts: int = 0  # alerts opened so far
    day: str | None = None  # the UTC day `told_today` counts
    told_today: int = 0


@dataclass(frozen=True)
class Notification:
    alert: int
    kind: str  # "fired", "repeat", "resolved"
    at: datetime  # the end of the hour that caused it


@dataclass(frozen=True)
class Step:
    state: State
    notifications: tuple[Notification, ...]
    opened: int | None = None  # the alert this hour opened
    resolved: int | None = None  # the alert this hour resolved
    capped: tuple[Notification, ...] = ()  # dropped by the daily cap


def acknowledge(state: State) -> State:
    return replace(state, acked=True) if state.alert is not None else state


def _wanted(state: State, anomalous: bool, hour_end: datetime, config: AlertConfig):
    """The state after the hour's transition, what it wants told, and the alerts it opened or resolved."""
    if anomalous:
        state = replace(state, anomalous_run=state.anomalous_run + 1, normal_run=0)
        if state.alert is None and state.anomalous_run >= config.fire_after:
            number = state.alerts + 1
            state = replace(state, alert=number, alerts=number, last_told=None, told_fired=False, acked=False)
            return state, [(number, "fired")], number, None
        if state.alert is not None and state.told_fired and not state.acked \
                and hour_end - state.last_told >= config.repeat:
            return state, [(state.alert, "repeat")], None, None
        return state, [], None, None
    state = replace(state, normal_run=state.normal_run + 1, anomalous_run=0)
    if state.alert is not None and state.normal_run >= config.resolve_after:
        number = state.alert
        # A firing still held back is dropped with the alert: nobody needs waking for a problem that is gone.
        held = tuple(h for h in state.held if h[0] != number)
        told = state.told_fired
        state = replace(state, alert=None, held=held, told_fired=False, acked=False)
        return state, [(number, "resolved")] if told else [], None, number
    return state, [], None, None


def step(state: State, anomalous: bool, hour_end: datetime, config: AlertConfig) -> Step:
    """The state after one more scored hour (hours in time order), and what to tell."""
    day = hour_end.date().isoformat()
    if state.day != day:
        state = replace(state, day=day, told_today=0)
    state, wanted, opened, resolved = _wanted(state, anomalous, hour_end, config)
    if config.quiet(hour_end):
        # Repeats are not held: the first hour after quiet hours repeats by itself if the alert still fires.
        held = state.held + tuple(w for w in wanted if w[1] != "repeat")
        return Step(replace(state, held=held), (), opened, resolved)
    told: list[Notification] = []
    capped: list[Notification] = []
    for number, kind in state.held + tuple(wanted):
        if kind == "fired" and number == state.alert and state.acked:
            continue  # acknowledged while held back: the person knows
        notification = Notification(number, kind, hour_end)
        if state.told_today >= config.daily_cap:
            capped.append(notification)
            continue
        told.append(notification)
        state = replace(state, told_today=state.told_today + 1)
        if number == state.alert:
            state = replace(state, last_told=hour_end, told_fired=True)
    return Step(replace(state, held=()), tuple(told), opened, resolved, tuple(capped))


def state_to_json(state: State) -> dict:
    doc = {k: getattr(state, k) for k in State.__dataclass_fields__}
    doc["last_told"] = state.last_told.isoformat() if state.last_told else None
    doc["held"] = [list(h) for h in state.held]
    return doc


def state_from_json(doc: dict) -> State:
    if not doc:
        return State()
    fields = {k: doc[k] for k in State.__dataclass_fields__ if k in doc}
    fields["last_told"] = datetime.fromisoformat(doc["last_told"]) if doc.get("last_told") else None
    fields["held"] = tuple((int(a), str(k)) for a, k in doc.get("held", ()))
    return State(**fields)
