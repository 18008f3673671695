"""Read-side queries for pages (HackSoft style). Each page runs a constant number of queries.

One module per area; this package re-exports what views, the CLI and tests use.
"""

from .alerts import (
    RuleRow,
    alert_channel,
    alert_rule_rows,
    alerts_page,
    connection_alerts,
    firing_alerts,
    maintenance_window,
)
from .log import (
    ERROR_RANGES,
    LOG_PAGE_SIZE,
    NO_ERROR_CODE,
    ErrorHistory,
    LogFilters,
    LogPage,
    decode_tail,
    error_history,
    request_detail,
    request_log_page,
)
from .overview import OverviewRow, connection_headroom, headroom_for, health_counts, overview
from .rotation import RotationPanel, rotation_attempt, rotation_panel
from .vault import (
    active_of,
    archived_detail,
    audit_page,
    connection_detail,
    connection_list,
)

__all__ = [
    "active_of", "alert_channel", "alert_rule_rows", "alerts_page", "archived_detail", "audit_page",
    "connection_alerts", "connection_detail", "connection_headroom", "connection_list", "error_history", "ERROR_RANGES",
    "ErrorHistory", "firing_alerts", "headroom_for", "health_counts", "LOG_PAGE_SIZE", "LogFilters",
    "LogPage", "maintenance_window", "NO_ERROR_CODE", "overview", "OverviewRow", "request_detail",
    "request_log_page", "decode_tail", "rotation_attempt", "rotation_panel", "RotationPanel", "RuleRow",
]
