"""The alert engine: tell ops staff when a connection breaks, once when a problem begins and once
when it ends.

The engine is a periodic evaluation of state the rest of Switchboard already keeps (health,
the rotation journal, the rate-limit snapshot, the request log), so no code path that changes
that state needs to know about alerts. Each (connection, condition) pair has an AlertState row;
a change of its `active` flag, made under a row lock, is a transition: it records an AlertEvent
and queues one AlertDelivery per enabled channel (delivery.py), unless a maintenance window
(maintenance.py), the cooldown or a disabled rule suppresses it (the event still records why).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from ..formatting import duration_text
from ..models import (
    AlertCondition,
    AlertEvent,
    AlertRule,
    AlertState,
    Connection,
    Credential,
    Health,
    RequestLog,
    RotationAttempt,
    RotationState,
)
from ..services.audit import Actor, audit
from .delivery import queue
from .maintenance import in_maintenance

RATE_LIMITED_WINDOW = dt.timedelta(minutes=15)
REFRESH_OVERDUE_GRACE = dt.timedelta(minutes=10)
ROTATION_LOOKBACK = dt.timedelta(days=30)


@dataclass(frozen=True)
class Finding:
    active: bool
    detail: str = ""


# -- rules ---------------------------------------------------------------------------------

# condition -> default threshold (headroom_low: percent remaining; credential_expiring: hours ahead).
DEFAULT_RULES: dict[str, float | None] = {
    AlertCondition.FAILING: None,
    AlertCondition.NEEDS_ATTENTION: None,
    AlertCondition.ROTATION_FAILED: None,
    AlertCondition.HEADROOM_LOW: 10.0,
    AlertCondition.RATE_LIMITED: None,
    AlertCondition.CREDENTIAL_EXPIRING: 24.0,
}


def ensure_default_rules() -> None:
    """Create any missing default rule (never changes one an admin edited)."""
    for condition, threshold in DEFAULT_RULES.items():
        AlertRule.objects.get_or_create(connection=None, condition=condition,
                                        defaults={"threshold": threshold, "enabled": True})


def effective_rules(connections: list[Connection]) -> dict[tuple[int, str], AlertRule]:
    """(connection id, condition) -> the rule in force: the connection's own or the default."""
    rules = list(AlertRule.objects.in_force_for(connections))
    defaults = {r.condition: r for r in rules if r.connection_id is None}
    own = {(r.connection_id, r.condition): r for r in rules if r.connection_id is not None}
    result = {}
    for c in connections:
        for condition in AlertCondition.values:
            rule = own.get((c.pk, condition)) or defaults.get(condition)
            if rule is not None:
                result[(c.pk, condition)] = rule
    return result


def rule_set(*, connection: Connection | None, condition: str, enabled: bool, threshold: float | None,
             cooldown_minutes: int, actor: Actor) -> AlertRule:
    if condition not in AlertCondition.values:
        raise ValidationError({"condition": f"unknown condition {condition!r}"})
    if threshold is not None and threshold < 0:
        raise ValidationError({"threshold": "must be 0 or more"})
    rule, _ = AlertRule.objects.update_or_create(
        connection=connection, condition=condition,
        defaults={"enabled": enabled, "threshold": threshold, "cooldown_minutes": cooldown_minutes},
    )
    audit(actor=actor, action="alert.rule", connection=connection,
          details={"condition": condition, "enabled": enabled, "threshold": threshold,
                   "cooldown_minutes": cooldown_minutes})
    return rule


# -- conditions ----------------------------------------------------------------------------

def _findings(connections: list[Connection], rules, now: dt.datetime) -> dict[tuple[int, str], Finding]:
    """Evaluate every condition for every connection with a constant number of queries."""
    ids = [c.pk for c in connections]
    latest_rotation: dict[int, RotationAttempt] = {}
    recent = (RotationAttempt.objects.filter(connection_id__in=ids, started_at__gte=now - ROTATION_LOOKBACK)
              .exclude(state=RotationState.STARTED).order_by("-started_at"))
    for attempt in recent:
        latest_rotation.setdefault(attempt.connection_id, attempt)
    recent_429 = dict(
        RequestLog.objects.filter(connection_id__in=ids, status_code=429, started_at__gte=now - RATE_LIMITED_WINDOW)
        .values_list("connection_id").annotate(last=Max("started_at"))
    )
    expiries: dict[int, dt.datetime] = {}
    for cred in Credential.objects.active().filter(connection_id__in=ids).only(
            "connection_id", "meta"):
        raw = (cred.meta or {}).get("refresh_expires_at") or (cred.meta or {}).get("expires_at")
        if raw:
            try:
                expiries[cred.connection_id] = dt.datetime.fromisoformat(str(raw))
            except ValueError:
                pass

    out: dict[tuple[int, str], Finding] = {}
    for c in connections:
        reason = f" — {c.health_reason}" if c.health_reason else ""
        out[(c.pk, AlertCondition.FAILING)] = Finding(
            c.health in (Health.FAILING, Health.SUSPENDED), f"{c.name} is {c.get_health_display().lower()}{reason}")
        out[(c.pk, AlertCondition.NEEDS_ATTENTION)] = Finding(
            c.health == Health.NEEDS_ATTENTION, f"{c.name} needs attention{reason}")
        attempt = latest_rotation.get(c.pk)
        failed = attempt is not None and attempt.state in (RotationState.FAILED, RotationState.OUTCOME_UNKNOWN)
        out[(c.pk, AlertCondition.ROTATION_FAILED)] = Finding(failed, (
            f"rotation of {c.name} at {attempt.started_at:%Y-%m-%d %H:%M:%S} UTC "
            f"{'has an unknown outcome' if attempt.state == RotationState.OUTCOME_UNKNOWN else 'failed'}"
            + (f" (vendor request id {attempt.vendor_request_id})" if attempt.vendor_request_id else "")
            + (f": {attempt.error}" if attempt.error else "")) if failed else "")
        threshold = rules.get((c.pk, AlertCondition.HEADROOM_LOW))
        pct = None
        if c.rl_limit and c.rl_remaining is not None and (c.rl_reset_at is None or c.rl_reset_at > now):
            pct = 100.0 * c.rl_remaining / c.rl_limit
        limit_pct = threshold.threshold if threshold and threshold.threshold is not None else 10.0
        out[(c.pk, AlertCondition.HEADROOM_LOW)] = Finding(
            pct is not None and pct < limit_pct,
            f"{c.name}: {c.rl_remaining} of {c.rl_limit} requests left ({pct:.0f}%, alert below {limit_pct:g}%)"
            if pct is not None else "")
        last_429 = recent_429.get(c.pk)
        blocked = c.blocked_until is not None and c.blocked_until > now
        out[(c.pk, AlertCondition.RATE_LIMITED)] = Finding(
            bool(last_429) or blocked,
            (f"{c.name} received 429 Too Many Requests at {last_429:%H:%M:%S} UTC" if last_429 else
             f"{c.name} is blocked by the vendor until {c.blocked_until:%H:%M:%S} UTC") if (last_429 or blocked) else "")
        expiring = rules.get((c.pk, AlertCondition.CREDENTIAL_EXPIRING))
        hours = expiring.threshold if expiring and expiring.threshold is not None else 24.0
        detail = ""
        expires = expiries.get(c.pk)
        if expires is not None and expires - now < dt.timedelta(hours=hours):
            detail = f"the credential of {c.name} expires at {expires:%Y-%m-%d %H:%M} UTC"
        elif c.refresh_interval and c.next_refresh_at and c.next_refresh_at < now - REFRESH_OVERDUE_GRACE:
            detail = f"the scheduled refresh of {c.name} is overdue since {c.next_refresh_at:%Y-%m-%d %H:%M} UTC"
        out[(c.pk, AlertCondition.CREDENTIAL_EXPIRING)] = Finding(bool(detail), detail)
    return out


# -- transitions ---------------------------------------------------------------------------

def evaluate(*, connection_ids: list[int] | None = None, now: dt.datetime | None = None) -> list[AlertEvent]:
    """Compare every condition with its stored state; record and queue alerts for transitions."""
    now = now or timezone.now()
    qs = Connection.objects.filter(enabled=True)
    if connection_ids is not None:
        qs = qs.filter(pk__in=connection_ids)
    connections = list(qs)
    if not connections:
        return []
    rules = effective_rules(connections)
    findings = _findings(connections, rules, now)
    maintenance = in_maintenance([c.pk for c in connections], now)
    states = {(s.connection_id, s.condition): s for s in AlertState.objects.filter(connection__in=connections)}
    events = []
    for c in connections:
        for condition in AlertCondition.values:
            rule = rules.get((c.pk, condition))
            finding = findings[(c.pk, condition)]
            state = states.get((c.pk, condition))
            if rule is None or not rule.enabled:
                finding = Finding(False)  # a disabled rule ends nothing loudly and starts nothing
                if state is None or not state.active:
                    continue
                event = _transition(c, condition, finding, now, rule, suppressed="rule disabled")
            elif state is None and not finding.active:
                continue
            elif state is not None and state.active == finding.active:
                continue
            else:
                event = _transition(c, condition, finding, now, rule,
                                    suppressed="maintenance window" if c.pk in maintenance else "")
            if event is not None:
                events.append(event)
    return events


def _transition(connection: Connection, condition: str, finding: Finding, now, rule: AlertRule | None,
                suppressed: str) -> AlertEvent | None:
    with transaction.atomic():
        state, _ = AlertState.objects.get_or_create(connection=connection, condition=condition,
                                                    defaults={"active": False, "since": now})
        state = AlertState.objects.select_for_update().get(pk=state.pk)
        if state.active == finding.active:
            return None  # another evaluator got here first
        begin = finding.active
        label = AlertCondition(condition).label
        if begin:
            message = f"{label}: {finding.detail}"
            cooldown = dt.timedelta(minutes=rule.cooldown_minutes if rule else 30)
            if not suppressed and state.last_notified_at and now - state.last_notified_at < cooldown:
                suppressed = f"cooldown ({rule.cooldown_minutes if rule else 30} min)"
        else:
            lasted = duration_text((now - state.since).total_seconds() * 1000) if state.since else ""
            message = (f"Resolved — {label}: {connection.name} is back to normal"
                       + (f" after {lasted}" if lasted else "") + "."
                       + (f" The alert was: {state.detail}" if state.detail else ""))
            if not suppressed and state.last_notified_at is None:
                suppressed = "its start was not notified"
        event = AlertEvent.objects.create(connection=connection, condition=condition,
                                          transition="begin" if begin else "end", at=now, message=message,
                                          suppressed=suppressed)
        state.active = begin
        state.since = now
        state.detail = finding.detail[:500] if begin else ""
        if not suppressed:
            state.last_notified_at = now if begin else state.last_notified_at
            queue(event, subject=f"[Switchboard] {'' if begin else 'Resolved: '}{connection.name}: {label}")
        elif not begin:
            state.last_notified_at = None
        state.save()
    return event
