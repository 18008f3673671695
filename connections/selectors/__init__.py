"""Read-side queries for pages (HackSoft style). Each page runs a constant number of queries.

One module per area; this package re-exports what views, the CLI and tests use.
"""

from .log import (
    ERROR_RANGES,
    LOG_PAGE_SIZE,
    NO_ERROR_CODE,
    ErrorHistory,
    LogFilters,
    LogPage,
    error_history,
    request_detail,
    request_log_page,
)
from .overview import OverviewRow, connection_headroom, headroom_for, health_counts, overview
from .rotation import RotationPanel, rotation_attempt, rotation_panel
from .vault import (
    active_of,
    alert_rule_rows,
    audit_page,
    connection_alerts,
    connection_detail,
    connection_list,
    firing_alerts,
)

__all__ = [
    "ERROR_RANGES", "LOG_PAGE_SIZE", "NO_ERROR_CODE", "ErrorHistory", "LogFilters", "LogPage", "OverviewRow", "RotationPanel", "rotation_attempt", "rotation_panel", "active_of", "alert_rule_rows", "audit_page",
    "connection_alerts", "connection_detail", "connection_headroom", "connection_list", "error_history", "firing_alerts",
    "headroom_for", "health_counts", "overview", "request_detail", "request_log_page",
]
