"""What to do about a failed request: the advice shown on the error details page.

The defaults follow the HTTP semantics every vendor sheet in shared/VENDORS.md agrees on
(401 never retried, 429 wait for the reset, 5xx retry with backoff, other 4xx fix the
request). A provider refines them through what it declares (providers/base.py), with no
vendor check here: its retry policy (which 5xx it retries), and `support_keeps_days`, how long
the vendor's support keeps debug data for a request id (TeleTracker: about two weeks for the
guid), shown as a date on the page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from .models import Outcome, RequestLog

RETRY = "retry"        # safe to try again (the client may already have)
WAIT = "wait"          # try again only after a point in time
NO_RETRY = "no_retry"  # retrying cannot help: something must change first
NONE = "none"          # nothing to do


@dataclass
class Advice:
    verdict: str
    headline: str
    steps: list[str] = field(default_factory=list)
    wait_until: datetime | None = None

    @property
    def verdict_label(self) -> str:
        return {RETRY: "Retry", WAIT: "Wait, then retry", NO_RETRY: "Do not retry", NONE: "No action"}[self.verdict]


def _reset_at(log: RequestLog) -> datetime | None:
    """When the vendor said the limit resets: X-RateLimit-Reset (Unix time), else Retry-After."""
    rl = log.rate_limit or {}
    reset = rl.get("reset") or rl.get("reset_at") or rl.get("X-RateLimit-Reset")
    if reset not in (None, ""):
        try:
            return datetime.fromtimestamp(float(reset), tz=UTC)
        except (TypeError, ValueError, OverflowError):
            try:
                return datetime.fromisoformat(str(reset))
            except ValueError:
                pass
    if log.retry_after is not None:
        return log.started_at + timedelta(seconds=log.retry_after)
    return None


def _request_fixes(log: RequestLog) -> list[str]:
    details = log.error_details or {}
    steps = []
    missing = details.get("missingInputVars") or details.get("missing_input_vars")
    if missing:
        names = ", ".join(missing) if isinstance(missing, list | tuple) else str(missing)
        steps.append(f"Send the missing input variables: {names}.")
    detail = details.get("errorDetail") or details.get("error_detail")
    if detail:
        steps.append(f"The vendor explains: {detail}")
    return steps


def advise(log: RequestLog, provider=None) -> Advice:
    status = log.status_code
    policy = provider.retry_policy if provider is not None else None
    support = "If it persists, contact the vendor's support with the request id above." if log.vendor_request_id \
        else "If it persists, contact the vendor's support with the time and path of the request."
    if log.outcome == Outcome.OK:
        return Advice(NONE, "The request succeeded.")
    if log.outcome == Outcome.THROTTLED or status == 429:
        until = _reset_at(log)
        steps = ["Switchboard holds further requests back until then; lower the request rate if this recurs."]
        if until:
            return Advice(WAIT, f"Rate limit reached: wait until the limit resets at {until:%Y-%m-%d %H:%M:%S %Z}.",
                          steps, wait_until=until)
        return Advice(WAIT, "Rate limit reached: back off (with jitter) before retrying.", steps)
    if log.outcome in (Outcome.NETWORK_ERROR, Outcome.TIMEOUT):
        if log.operation == "refresh":
            return Advice(NO_RETRY, "Outcome unknown: the vendor may have issued a new token and rescinded the old "
                                    "one. Do not retry the refresh blindly.",
                          ["Check the rotation journal of this connection; it probes the old token and says what "
                           "to do."])
        what = "timed out" if log.outcome == Outcome.TIMEOUT else "did not get an answer"
        return Advice(RETRY, f"The request {what}: retry with backoff.",
                      ["If it keeps failing, check the base URL, DNS and any firewall between Switchboard and "
                       "the vendor.", support])
    if status == 401:
        return Advice(NO_RETRY, "Authentication failed: do not retry; repeated failures lock vendor accounts.",
                      ["Check the credential (user, password or token) and replace the secret if it changed.",
                       "Scheduled tests of this connection pause until the secret changes or an operator resumes "
                       "them."])
    if status == 403:
        return Advice(NO_RETRY, "The credential is valid but not allowed to do this: do not retry.",
                      ["Ask the vendor (or the account's administrator) to grant the permission for this "
                       "resource or service."])
    if status == 404:
        return Advice(NO_RETRY, "Not found: the resource or endpoint does not exist for this credential.",
                      ["Check the path and id; the resource may be deleted or not shared with this account."])
    if status == 501:
        return Advice(NO_RETRY, "Not implemented by the vendor: do not retry.", [support])
    if status is not None and 400 <= status < 500:
        return Advice(NO_RETRY, "The vendor rejected the request: fix it before retrying.",
                      _request_fixes(log) or ["Check the request's parameters and body against the vendor's "
                                              "documentation."])
    if status is not None and status >= 500:
        if policy is not None and status not in policy.retry_statuses:
            return Advice(NO_RETRY, f"The vendor answered {status}; its documentation does not say to retry it.",
                          [support])
        return Advice(RETRY, "The vendor had a server error: safe to retry with backoff.", [support])
    return Advice(RETRY, "Unexpected answer: retry once, then check the response excerpt below.", [support])


def support_deadline(log: RequestLog, provider) -> datetime | None:
    """The date until which the vendor's support keeps debug data for this request id, if it says:
    from the provider's retention (`support_keeps_days`), else the `support_until` date the
    provider's error parser stored with the row."""
    if not log.vendor_request_id:
        return None
    days = provider.support_keeps_days if provider is not None else None
    if days:
        return log.started_at + timedelta(days=days)
    stored = (log.error_details or {}).get("support_until") if isinstance(log.error_details, dict) else None
    if stored:
        try:
            return datetime.combine(date.fromisoformat(str(stored)[:10]), datetime.min.time(), tzinfo=UTC)
        except ValueError:
            return None
    return None
