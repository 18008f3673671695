"""Credential rotation (DESIGN.md "Rotation"): two kinds, one journal (RotationAttempt).

- rotate(): rescind-on-refresh vendors (Cleanlist, TeleTracker bearer sessions), crash-safe.
- staged_replace(): a pasted secret, stored staged, verified with the provider's test, promoted.
- reconcile_rotations(): settles what dead workers left; recover_spool(): imports spooled tokens.

docs/rotation.md has the state machine and what an operator sees and does at each failure.
"""

from .core import BUSY, SPOOLED, UNSUPPORTED, RotationOutcome, claim_connection, release_claim
from .reconcile import reconcile_rotations, settle_attempt
from .refresh import rotate
from .schedule import (
    connections_due_for_refresh,
    next_refresh_time,
    refresh_warning,
    rotation_mode,
    supports_refresh,
)
from .spool import recover_spool
from .staged import staged_replace

__all__ = [
    "BUSY", "SPOOLED", "UNSUPPORTED", "RotationOutcome", "claim_connection", "release_claim",
    "connections_due_for_refresh", "next_refresh_time", "reconcile_rotations", "settle_attempt",
    "refresh_warning", "rotate", "rotation_mode", "supports_refresh", "recover_spool", "staged_replace",
]
