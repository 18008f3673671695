"""The connections app's models, one module per concern; import them from here.

    core.py     Connection, Credential, RotationAttempt, RequestLog, AuditEvent; shared state
                (BatchRun, BatchRunResult, ThrottleScope, ThrottleLease)
    alerts.py   AlertRule, AlertChannel, MaintenanceWindow, AlertState, AlertEvent, AlertDelivery
    access.py   ApplicationKey (the egress proxy), ExternalIdentity (single sign-on), SecondFactorSeal
                and SealedTOTPDevice (the second factor's seed, encrypted)
    ../rollups.py  RequestRollup, ErrorRollup (and the trigger that keeps them)

Writes to Credential move the connection's credential generation (../credgen.py: the keys that let
the outbound call keep the active credential in memory); the signals are connected here.

The choices live in choices.py and the QuerySets in querysets.py; the choices are re-exported
here too, so `from connections.models import Health` works.
"""

# isort: off
from ..choices import AlertCondition, AlertTransition, ChannelKind, CredentialSource, CredentialState  # noqa: F401
from ..choices import DeliveryState, Health, Operation, Outcome, RotationKind, RotationState, TriggeredBy  # noqa: F401
from .core import AuditEvent, BatchRun, BatchRunResult, Connection, Credential, RequestLog  # noqa: F401
from .core import RotationAttempt, ThrottleLease, ThrottleScope  # noqa: F401
from .alerts import AlertChannel, AlertDelivery, AlertEvent, AlertRule, AlertState, MaintenanceWindow  # noqa: F401
from .access import ApplicationKey, ExternalIdentity, SealedTOTPDevice, SecondFactorSeal  # noqa: F401
# Counts per connection and time bucket, kept by a trigger on the request log (connections/rollups.py).
from ..rollups import ErrorRollup, RequestRollup  # noqa: F401
# isort: on
from .. import credgen

# Every save() and delete() of a credential moves its connection's generation (connections/credgen.py).
credgen.connect_signals(Credential)
