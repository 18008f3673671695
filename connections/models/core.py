"""Connection, Credential, RotationAttempt, RequestLog, AuditEvent (shared/DESIGN.md), and the
shared state every process must see (batch progress, throttle scopes and leases)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

# isort: off
from ..choices import CredentialSource, CredentialState, Health, Operation, Outcome, RotationKind, RotationState
from ..choices import TriggeredBy
from ..crypto import EncryptedJSONField, SecretUnavailable
from ..providers import provider_choices, provider_for
from ..querysets import ConnectionQuerySet, CredentialQuerySet, LiveConnections, RotationAttemptQuerySet
# isort: on



class Connection(models.Model):
    # Unique among archived ones too: an archived connection keeps its name (docs/decisions.md).
    name = models.SlugField(max_length=64, unique=True)
    provider = models.CharField(max_length=32, choices=provider_choices)
    base_url = models.URLField(max_length=500)
    options = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True)
    # Seconds between scheduled tests (0: not scheduled) and proactive refreshes (0: none).
    test_interval = models.PositiveIntegerField(default=300)
    refresh_interval = models.PositiveIntegerField(default=0)

    health = models.CharField(max_length=20, choices=Health.choices, default=Health.UNKNOWN)
    health_reason = models.CharField(max_length=500, blank=True)
    health_changed_at = models.DateTimeField(null=True, blank=True)
    last_test_at = models.DateTimeField(null=True, blank=True)
    last_ok_at = models.DateTimeField(null=True, blank=True)
    # The latest test result as shown on pages: ok, status_code, duration_ms, vendor_request_id, error{code,message}.
    last_test_result = models.JSONField(default=dict, blank=True)

    # Account-lockout protection: scheduled tests stop after an authentication failure.
    tests_paused = models.BooleanField(default=False)
    paused_reason = models.CharField(max_length=300, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)

    # Denormalised latest rate-limit snapshot.
    rl_limit = models.IntegerField(null=True, blank=True)
    rl_remaining = models.IntegerField(null=True, blank=True)
    rl_reset_at = models.DateTimeField(null=True, blank=True)
    rl_bucket = models.CharField(max_length=100, blank=True)
    rl_observed_at = models.DateTimeField(null=True, blank=True)
    blocked_until = models.DateTimeField(null=True, blank=True)

    # Rotation claim: a compare-and-set lease, one rotation at a time across processes.
    rotation_claim = models.UUIDField(null=True, blank=True)
    rotation_lease_until = models.DateTimeField(null=True, blank=True)
    next_refresh_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    # Archived (never deleted): read-only, its secrets retired, its history kept (services/archive.py).
    archived_at = models.DateTimeField(null=True, blank=True)
    archived_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    archived_by_label = models.CharField(max_length=150, blank=True)

    with_archived = ConnectionQuerySet.as_manager()
    objects = LiveConnections()

    class Meta:
        ordering = ["name"]
        default_manager_name = "objects"
        base_manager_name = "with_archived"  # a log row's .connection is found when archived
        permissions = [
            ("run_tests", "Can run connection tests and calls"),
            ("rotate_credentials", "Can rotate credentials"),
            ("manage_secrets", "Can create, edit and archive connections and their secrets"),
            ("manage_alerts", "Can configure alert channels, rules and maintenance windows"),
            ("manage_users", "Can add users, change their roles, deactivate them and reset their passwords"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def provider_obj(self):
        # A declarative vendor whose file is gone or broken: a stand-in that refuses to send.
        return provider_for(self.provider)

    @property
    def provider_label(self) -> str:
        return self.provider_obj.label

    def effective_options(self) -> dict:
        return {**self.provider_obj.default_options(), **(self.options or {})}


class Credential(models.Model):
    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="credentials")
    version = models.PositiveIntegerField()
    secret = EncryptedJSONField()
    state = models.CharField(max_length=10, choices=CredentialState.choices, default=CredentialState.STAGED)
    fingerprint = models.CharField(max_length=32)
    source = models.CharField(max_length=20, choices=CredentialSource.choices, default=CredentialSource.OPERATOR)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_by_label = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    activated_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)
    # Non-secret facts about the secret, e.g. a session token's expiry.
    meta = models.JSONField(default=dict, blank=True)

    objects = CredentialQuerySet.as_manager()

    class Meta:
        ordering = ["connection", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["connection"], condition=Q(state="active"),
                                    name="one_active_credential_per_connection"),
            models.UniqueConstraint(fields=["connection", "version"], name="unique_credential_version"),
        ]

    def __str__(self) -> str:
        return f"{self.connection_id} v{self.version} ({self.state}, {self.fingerprint})"

    def reveal(self) -> dict:
        """The plaintext secret, for the moment a request is sent. Never log or render it."""
        try:
            return self.secret.reveal()
        except SecretUnavailable as exc:
            raise SecretUnavailable(f"connection {self.connection.name}, credential v{self.version}: {exc}") from None


class RotationAttempt(models.Model):
    """The rotation journal: one row per attempt, written and committed before the vendor is called."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    connection = models.ForeignKey(Connection, on_delete=models.PROTECT, related_name="rotations")
    kind = models.CharField(max_length=10, choices=RotationKind.choices, default=RotationKind.REFRESH)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    actor_label = models.CharField(max_length=150, blank=True)
    triggered_by = models.CharField(max_length=20, choices=TriggeredBy.choices, default=TriggeredBy.USER)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=20, choices=RotationState.choices, default=RotationState.STARTED)
    step = models.CharField(max_length=40, blank=True)
    old_credential = models.ForeignKey(Credential, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    new_credential = models.ForeignKey(Credential, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    old_fingerprint = models.CharField(max_length=32, blank=True)
    new_fingerprint = models.CharField(max_length=32, blank=True)
    vendor_request_id = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)

    objects = RotationAttemptQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["state", "started_at"], name="rotation_state_started")]

    def __str__(self) -> str:
        return f"rotation {self.id} of {self.connection_id}: {self.state}"


class RequestLog(models.Model):
    """One row per outbound HTTP attempt."""

    connection = models.ForeignKey(Connection, on_delete=models.PROTECT, related_name="request_logs")
    provider = models.CharField(max_length=32)  # denormalised for the vendor filter
    operation = models.CharField(max_length=20, choices=Operation.choices)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=1000)
    chain_id = models.UUIDField(default=uuid.uuid4)  # groups the attempts of one logical request
    attempt = models.PositiveSmallIntegerField(default=1)
    started_at = models.DateTimeField(default=timezone.now)
    duration_ms = models.PositiveIntegerField(default=0)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    vendor_request_id = models.CharField(max_length=200, blank=True)
    error_code = models.CharField(max_length=100, blank=True)
    error_message = models.TextField(blank=True)
    error_details = models.JSONField(default=dict, blank=True)
    rate_limit = models.JSONField(default=dict, blank=True)
    retry_after = models.FloatField(null=True, blank=True)
    request_excerpt = models.TextField(blank=True)
    response_excerpt = models.TextField(blank=True)
    response_content_type = models.CharField(max_length=200, blank=True)
    triggered_by = models.CharField(max_length=20, choices=TriggeredBy.choices, default=TriggeredBy.USER)
    actor_label = models.CharField(max_length=150, blank=True)
    task_id = models.CharField(max_length=100, blank=True)
    # The application whose proxied call this was (connections/proxy/); "" for Switchboard's own.
    application = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [
            models.Index(fields=["-started_at", "-id"], name="reqlog_recent"),
            models.Index(fields=["connection", "-started_at", "-id"], name="reqlog_conn_recent"),
            models.Index(fields=["provider", "-started_at", "-id"], name="reqlog_provider_recent"),
            models.Index(fields=["outcome", "-started_at", "-id"], name="reqlog_outcome_recent"),
            models.Index(fields=["status_code", "-started_at"], name="reqlog_status_recent"),
            models.Index(fields=["vendor_request_id"], name="reqlog_vendor_req_id",
                         condition=~Q(vendor_request_id="")),
            models.Index(fields=["chain_id"], name="reqlog_chain"),
            models.Index(fields=["application", "-started_at", "-id"], name="reqlog_app_recent",
                         condition=~Q(application="")),
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.path} -> {self.status_code or self.outcome}"

    @property
    def is_error(self) -> bool:
        return self.outcome != Outcome.OK


class AuditEvent(models.Model):
    """Append-only: on PostgreSQL a trigger refuses UPDATE and DELETE (migration 0011). Hence
    PROTECT: deleting a user or a connection with history is refused (users are deactivated,
    connections archived) instead of rewriting audit rows."""

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                              related_name="+")
    actor_label = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=50)
    connection = models.ForeignKey(Connection, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="audit_events")
    connection_name = models.CharField(max_length=64, blank=True)
    at = models.DateTimeField(default=timezone.now)
    ip = models.GenericIPAddressField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["-at", "-id"], name="audit_recent")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.connection_name}"


# ----------------------------------------------------------------------------- shared state
# What every process must see, in the database (docs/decisions.md, "Shared state").


class BatchRun(models.Model):
    """One "Test all": progress is counted from its results (services/batch.py)."""

    id = models.CharField(primary_key=True, max_length=32)  # uuid4 hex, part of the progress URL
    total = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"Test all {self.pk}"


class BatchRunResult(models.Model):
    """A finished test of a batch: one row per connection, so a redelivered task counts once."""

    batch = models.ForeignKey(BatchRun, on_delete=models.CASCADE, related_name="results")
    connection_pk = models.BigIntegerField()  # no foreign key: a connection deleted mid-batch still counts
    ok = models.BooleanField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["batch", "connection_pk"], name="batch_result_once")]

    def __str__(self) -> str:
        return f"{self.batch_id} {self.connection_pk} {'ok' if self.ok else 'failed'}"


class ThrottleScope(models.Model):
    """The database limiter's state of one scope (connections/outbound/throttle.py); times in Unix seconds."""

    scope = models.CharField(primary_key=True, max_length=200)
    blocked_until = models.FloatField(default=0.0)
    tat = models.FloatField(default=0.0)  # GCRA: when the next request may go
    window_number = models.BigIntegerField(default=0)
    window_count = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return self.scope


class ThrottleLease(models.Model):
    """A request in flight in a concurrency scope; it expires on its own if its process dies."""

    id = models.CharField(primary_key=True, max_length=32)
    scope = models.CharField(max_length=200)
    expires_at = models.FloatField()

    class Meta:
        indexes = [models.Index(fields=["scope", "expires_at"], name="throttle_lease_scope")]

    def __str__(self) -> str:
        return f"{self.scope} {self.pk}"
