"""A crowded data set for layout tests: what the pages look like in a busy, unhappy deployment.

50 connections over the five vendors, the longest names a slug allows (64 characters), every
health, maintenance badges, paused tests, long vendor errors, rate-limit figures near the limit,
a request log with long paths and query strings, rotations that failed with long errors, alert
events firing and ended, channels whose deliveries failed, and an audit trail with long details.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from connections.models import (
    AlertChannel,
    AlertDelivery,
    AlertEvent,
    AlertState,
    AuditEvent,
    Connection,
    Credential,
    Health,
    MaintenanceWindow,
    RequestLog,
    RotationAttempt,
)
from connections.services.archive import connection_archive
from connections.services.audit import Actor
from tests import factories

PROVIDERS = ["cleverbridge", "clever", "cloverdx", "teletracker", "cleanlist"]
HEALTHS = [Health.NEEDS_ATTENTION, Health.FAILING, Health.DEGRADED, Health.OK, Health.OK, Health.UNKNOWN,
           Health.SUSPENDED, Health.OK]
LONG_ERROR = ("HTTP 502 upstream_unavailable: The upstream order-management service did not answer within "
              "the gateway's 30000 ms budget; the request was not processed and may be retried safely "
              "once the dependency recovers (vendor request id 8c1d9a7e-4b1f-4e0e-9d51-0f3c2a7be5d1, "
              "correlation guid 6f1e0c6d-5a55-4a8e-8a1f-3e7f7d3c9b20, region eu-central-1, shard 17)")
LONG_PATH = ("/v3.0/districts/5a0b1c2d3e4f5a6b7c8d9e0f/sections/9f8e7d6c5b4a39281706f5e4/students"
             "?limit=10000&starting_after=5f3e2d1c0b9a8f7e6d5c4b3a&include=contacts,schools,terms,courses"
             "&expand=teacher.contact_information.phone_numbers&access_token=[redacted]&utm_source=switchboard")


def long_name(i: int, provider: str) -> str:
    """A 64-character slug, the longest a connection name can be."""
    return f"{provider}-{i:02d}-".ljust(64, "x") if i % 4 == 0 else f"{provider}-tenant-{i:02d}"


@dataclass
class Crowd:
    first: Connection          # a 64-character name, failing, in maintenance, with a rotation history
    rotation: RotationAttempt
    log: RequestLog            # an error with long excerpts and details
    names: list[str]
    archived: Connection       # archived, with its log rows and rotation history kept


def seed(n: int = 50) -> Crowd:
    now = timezone.now()
    first = factories.connection("clever", name=long_name(0, "clever"), base_url="https://api.clever.com",
                                 secret={"token": "crowded-token-v1"})
    conns = [first]
    for i in range(1, n):
        provider = PROVIDERS[i % len(PROVIDERS)]
        conns.append(Connection(name=long_name(i, provider), provider=provider,
                                base_url=f"https://{'very-long-subdomain-' * 3}{i}.example.com/api/v1"))
    Connection.objects.bulk_create(conns[1:])
    conns = list(Connection.objects.order_by("id"))
    for i, c in enumerate(conns):
        health = HEALTHS[i % len(HEALTHS)]
        fields = {"health": health, "last_test_at": now - timedelta(minutes=i % 9 + 1),
                  "last_ok_at": now - timedelta(hours=i % 5 + 1),
                  "health_changed_at": now - timedelta(minutes=12 + i),
                  "health_reason": LONG_ERROR if health != Health.OK else "",
                  "last_test_result": {"ok": health == Health.OK, "status_code": 200 if health == Health.OK else 502,
                                       "duration_ms": 16_900 + i}}
        if c.provider == "clever":
            fields.update(rl_limit=1200, rl_remaining=1 + i, rl_reset_at=now + timedelta(seconds=40),
                          rl_observed_at=now, rl_bucket="district-5a0b1c2d3e4f5a6b7c8d9e0f")
        if i % 6 == 1:
            fields.update(tests_paused=True, paused_at=now, paused_reason="Scheduled tests are paused to avoid an "
                          "account lockout: the vendor rejected the credential (HTTP 401).")
        if i % 7 == 2:
            fields.update(blocked_until=now + timedelta(seconds=50))
        if c.provider in ("teletracker", "cleanlist"):
            fields.update(next_refresh_at=now + timedelta(minutes=30 + i))
        Connection.objects.filter(pk=c.pk).update(**fields)
    MaintenanceWindow.objects.bulk_create([
        MaintenanceWindow(connection=c, starts_at=now - timedelta(minutes=5), ends_at=now + timedelta(hours=2),
                          reason="Vendor maintenance announced on the status page: database migration, "
                                 "expect 502s and timeouts from the EU region", created_by_label="admin")
        for c in conns[::3]])

    # Credential history on the first connection: staged-and-rejected, retired, rescinded.
    Credential.objects.filter(connection=first, state="active").update(fingerprint="gw4u7d2k9q1z5x8c")
    for v, state in ((2, "retired"), (3, "rescinded"), (4, "staged")):
        Credential.objects.create(connection=first, version=v + 10, secret={"token": f"old-{v}"}, state=state,
                                  fingerprint=f"fp{v}{'a' * 14}", created_by_label="operator-with-a-long-name",
                                  created_at=now - timedelta(days=v))
    rotations = [RotationAttempt(connection=c, kind="staged" if i % 2 else "refresh", actor_label="operator1",
                                 started_at=now - timedelta(minutes=30 + i), finished_at=now - timedelta(minutes=29 + i),
                                 state=["failed", "outcome_unknown", "succeeded", "recovered"][i % 4],
                                 step="verify", old_fingerprint="gw4u7d2k9q1z5x8c", new_fingerprint="p0o9i8u7y6t5r4e3",
                                 vendor_request_id="8c1d9a7e-4b1f-4e0e-9d51-0f3c2a7be5d1",
                                 error=LONG_ERROR if i % 4 < 2 else "")
                 for i, c in enumerate(conns[:20])]
    rotations += [RotationAttempt(connection=first, kind="refresh", actor_label="schedule", triggered_by="schedule",
                                  started_at=now - timedelta(hours=h), finished_at=now - timedelta(hours=h),
                                  state="failed", error=LONG_ERROR, vendor_request_id=f"req_{h:04d}" * 6)
                  for h in range(1, 12)]
    RotationAttempt.objects.bulk_create(rotations)

    logs = []
    for i in range(240):
        c = conns[i % len(conns)]
        error = i % 3 == 0
        logs.append(RequestLog(
            connection=c, provider=c.provider, operation=["call", "test", "refresh"][i % 3],
            method=["GET", "POST", "DELETE"][i % 3], path=LONG_PATH if i % 2 else f"/v1/items/{i}",
            started_at=now - timedelta(minutes=7 * i), attempt=i % 5 + 1, duration_ms=16_900 + i,
            status_code=(None if i % 9 == 0 else 429 if i % 5 == 0 else 502) if error else 200,
            outcome=("network_error" if i % 9 == 0 else "throttled" if i % 5 == 0 else "http_error") if error else "ok",
            vendor_request_id=f"8c1d9a7e-4b1f-4e0e-9d51-{i:012d}" if error else "",
            error_code="upstream_unavailable_because_of_a_very_long_vendor_error_code" if error else "",
            error_message=LONG_ERROR if error else "",
            error_details={"missingInputVars": ["campaign_id", "account_id_with_long_name"] * 4,
                           "errorDetail": LONG_ERROR} if error else {},
            rate_limit={"limit": 1200, "remaining": 3, "reset": int(now.timestamp()) + 40} if c.provider == "clever" else {},
            request_excerpt=f"{['GET', 'POST', 'DELETE'][i % 3]} {LONG_PATH}\n" + "x" * 600,
            response_excerpt='{"error": "' + LONG_ERROR + '"}' if error else "{}",
            response_content_type="application/json; charset=utf-8", triggered_by=["user", "schedule", "cli"][i % 3],
            actor_label="operator-with-a-long-name", task_id=str(uuid.uuid4())))
    RequestLog.objects.bulk_create(logs)
    log = RequestLog.objects.filter(connection=first, outcome="http_error").first() or \
        RequestLog.objects.filter(outcome="http_error").first()

    AuditEvent.objects.bulk_create([
        AuditEvent(actor_label="administrator-with-a-rather-long-user-name", action="connection.secret_replaced",
                   connection=c, connection_name=c.name, at=now - timedelta(minutes=i), ip="2001:db8:85a3::8a2e:370:7334",
                   details={"fingerprint": "gw4u7d2k9q1z5x8c", "fields": ["client_id", "client_secret", "refresh_token"],
                            "reason": LONG_ERROR, "url": "https://" + "very-long-subdomain-" * 4 + "example.com"})
        for i, c in enumerate(conns)])

    channels = [AlertChannel.objects.create(name="on-call-webhook-for-the-integrations-team-eu-central", kind="webhook",
                                            config={"url": "https://hooks.example.com/x"},
                                            display_target="hooks.very-long-subdomain-of-the-chat-vendor.example.com"),
                AlertChannel.objects.create(name="ops-mail", kind="email", config={"to": ["ops@example.com"]},
                                            display_target="ops-team-distribution-list@integrations.example.com, "
                                                           "oncall-secondary@integrations.example.com")]
    events = []
    for i, c in enumerate(conns[:30]):
        condition = ["failing", "needs_attention", "rate_limited", "headroom_low", "rotation_failed"][i % 5]
        events.append(AlertEvent(connection=c, condition=condition, transition="begin" if i % 2 == 0 else "end",
                                 at=now - timedelta(minutes=3 * i), message=f"{c.name} is failing: {LONG_ERROR}",
                                 suppressed="maintenance window" if i % 3 == 0 else ""))
    AlertEvent.objects.bulk_create(events)
    AlertDelivery.objects.bulk_create([
        AlertDelivery(event=e, channel=channels[j], subject="x", body="x", state="failed" if j == 0 else "sent",
                      attempts=5, last_error="webhook answered HTTP 502 from hooks.very-long-subdomain-of-the-chat-"
                                             "vendor.example.com after 30000 ms" if j == 0 else "")
        for e in AlertEvent.objects.filter(suppressed="") for j in range(2)])
    AlertState.objects.bulk_create([
        AlertState(connection=c, condition=["failing", "needs_attention", "rate_limited"][i % 3], active=True,
                   since=now - timedelta(minutes=12 + i), detail=f"{c.name}: {LONG_ERROR}")
        for i, c in enumerate(conns[:12])])
    archived = connection_archive(connection=conns[-1], actor=Actor(label="ops-lead-with-a-long-user-name"))
    # Applications of the proxy: one calling many connections with a long name, one revoked.
    from connections.services.appkeys import create_key, revoke_key

    create_key(name="billing-reconciliation-nightly-export-".ljust(64, "x"), connections=[c.name for c in conns[:9]],
               methods=["GET", "POST"], actor=Actor(label="crowded"))
    create_key(name="crm-sync", connections=[first.name], actor=Actor(label="crowded"))
    revoke_key(name="crm-sync", actor=Actor(label="crowded"))
    return Crowd(first=Connection.objects.get(pk=first.pk), rotation=rotations[0], log=log,
                 names=[c.name for c in conns[:-1]], archived=archived)
