"""The choices of the models' fields (Django TextChoices): one place, imported by the models,
their QuerySets (connections/querysets.py), forms and selectors. Values are what the database
stores; labels are what pages show."""

from django.db import models


class Health(models.TextChoices):
    UNKNOWN = "unknown", "Unknown"
    OK = "ok", "OK"
    DEGRADED = "degraded", "Degraded"
    FAILING = "failing", "Failing"
    SUSPENDED = "suspended", "Suspended"
    NEEDS_ATTENTION = "needs_attention", "Needs attention"


class CredentialState(models.TextChoices):
    STAGED = "staged", "Staged"
    ACTIVE = "active", "Active"
    RETIRED = "retired", "Retired"
    RESCINDED = "rescinded", "Rescinded"
    # A pasted (staged) secret the vendor refused during verification: it was never active.
    REJECTED = "rejected", "Rejected"


class CredentialSource(models.TextChoices):
    """How a credential came: entered by an operator (form or CLI), issued by the vendor's refresh,
    imported from the recovery spool, or from a definitions import."""

    OPERATOR = "operator", "Operator"
    REFRESH = "refresh", "Vendor refresh"
    RECOVERY = "recovery", "Recovery spool"
    IMPORT = "import", "Import"


class RotationKind(models.TextChoices):
    REFRESH = "refresh", "Refresh at the vendor"
    STAGED = "staged", "Staged replacement"


class RotationState(models.TextChoices):
    STARTED = "started", "Started"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    OUTCOME_UNKNOWN = "outcome_unknown", "Outcome unknown"
    RECOVERED = "recovered", "Recovered"


class TriggeredBy(models.TextChoices):
    """Who set a request or rotation off (services/audit.py Actor.via)."""

    USER = "user", "User"
    SCHEDULE = "schedule", "Schedule"
    CLI = "cli", "CLI"
    SYSTEM = "system", "System"


class Operation(models.TextChoices):
    TEST = "test", "Test"
    CALL = "call", "Call"
    REFRESH = "refresh", "Refresh"
    PROBE = "probe", "Probe"
    LOGIN = "login", "Login"
    PROXY = "proxy", "Proxy"


class Outcome(models.TextChoices):
    OK = "ok", "OK"
    HTTP_ERROR = "http_error", "HTTP error"
    NETWORK_ERROR = "network_error", "Network error"
    TIMEOUT = "timeout", "Timeout"
    THROTTLED = "throttled", "Throttled"


class AlertCondition(models.TextChoices):
    FAILING = "failing", "Connection failing"
    NEEDS_ATTENTION = "needs_attention", "Needs attention"
    ROTATION_FAILED = "rotation_failed", "Rotation failed or outcome unknown"
    HEADROOM_LOW = "headroom_low", "Rate-limit headroom low"
    RATE_LIMITED = "rate_limited", "Rate limited (429)"
    CREDENTIAL_EXPIRING = "credential_expiring", "Credential or refresh about to lapse"


class AlertTransition(models.TextChoices):
    BEGIN = "begin", "Began"
    END = "end", "Ended"
    TEST = "test", "Test"


class ChannelKind(models.TextChoices):
    EMAIL = "email", "E-mail"
    WEBHOOK = "webhook", "Webhook"


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
