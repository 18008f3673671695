"""Local twins ("doubles") of the five vendors in shared/VENDORS.md, for the demo and the tests.

Standard library only (no Django), so it runs in any process:

    with SandboxServer() as sandbox:                 # port 0: a free port
        base = sandbox.base_url("cleanlist")         # http://127.0.0.1:PORT/cleanlist
        sandbox.set_fault("cleanlist", "drop_after_refresh", count=1)
        sandbox.stats("cleanlist")["refresh_calls"]

`python manage.py runsandbox` serves it in the foreground; /_sandbox/ is the control API.
"""

from .credentials import (
    CLEVER_SSO_TOKEN,
    CLOVERDX_NO_MONITORING_CREDENTIALS,
    DEMO_CREDENTIALS,
    TELETRACKER_DEMO_ACCOUNTS,
)
from .faults import ALL_FAULTS
from .server import SandboxServer
from .vendors import VENDORS

VENDOR_NAMES = tuple(VENDORS)
FAULTS = tuple(ALL_FAULTS)

__all__ = [
    "CLEVER_SSO_TOKEN",
    "CLOVERDX_NO_MONITORING_CREDENTIALS",
    "DEMO_CREDENTIALS",
    "FAULTS",
    "TELETRACKER_DEMO_ACCOUNTS",
    "VENDOR_NAMES",
    "SandboxServer",
]
