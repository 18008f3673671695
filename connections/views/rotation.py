"""Rotate on the detail page (templates/connections/rotation.html).

Refresh vendors: POST enqueues the rotate task (on commit) and answers the status fragment,
which polls every second while it runs. Other vendors (and a pasted Cleanlist token): a
write-only form whose secret is verified with the connection test before it replaces the
current one (staged_replace, synchronous: bounded by the client's timeouts).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from .. import selectors
from ..forms import SecretForm, errors_text
from ..models import RotationAttempt, RotationState
from ..rotation import BUSY, staged_replace, supports_refresh
from ..rotation.core import RotationOutcome
from ..rotation.jobs import cached_outcome, enqueue_rotation, queued_at
from ..selectors import rotation_attempt
from ..services.audit import Actor
from .common import HtmxHttpRequest, can, detail_url, fragment_or_page, get_connection, wants_fragment

TEMPLATE = "connections/rotation.html"
# The detail page's credential card and versions table reload on this event.
CREDENTIAL_CHANGED = "credential-changed"
STALLED_AFTER = 15  # seconds a queued rotation may wait for a worker before the page says so


def rotation_context(connection, *, outcome=None, attempt_id: str = "", form=None) -> dict:
    """`rot` of the rotation templates: the selector's panel, with this request's outcome, attempt and form."""
    panel = selectors.rotation_panel(connection=connection)
    return {
        "refreshes": panel.refreshes, "starts_session": panel.starts_session, "rescinds": panel.rescinds,
        "warning": panel.warning, "history": panel.history, "running": panel.running,
        "form": form or SecretForm(provider=connection.provider),
        "outcome": outcome,
        "attempt_id": attempt_id or (str(panel.running.id) if panel.running else ""),
    }


def _panel(request, connection, *, outcome=None, attempt_id="", form=None, status=200):
    context = {"connection": connection, "outcome": outcome, "attempt_id": attempt_id, "form": form,
               "rot": rotation_context(connection, outcome=outcome, attempt_id=attempt_id, form=form)}
    if attempt_id and rotation_attempt(attempt_id=attempt_id) is None:
        context.update(stage="queued", waited=0)
    return TemplateResponse(request, f"{TEMPLATE}#rotate-panel", context, status=status)


@require_GET
@can("view_connection")
def rotation_panel(request: HtmxHttpRequest, name: str):
    connection = get_connection(name)
    return fragment_or_page(request, f"{TEMPLATE}#rotate-panel",
                            {"connection": connection, "rot": rotation_context(connection)},
                            page=detail_url(connection), anchor="rotate")


@require_http_methods(["GET", "POST"])
@can("rotate_credentials")
def rotate(request: HtmxHttpRequest, name: str):
    connection = get_connection(name)
    if request.method == "GET":  # a followed link or a bookmark: the page whose Rotate panel POSTs
        return redirect(f"{detail_url(connection)}#rotate")
    if not supports_refresh(connection):
        message = f"{connection.provider_label} has no refresh for this credential: paste a new secret instead."
        if request.htmx:
            outcome = RotationOutcome(state="unsupported", message=message, connection=connection.name)
            return _panel(request, connection, outcome=outcome.as_dict(), status=400)
        messages.error(request, message)
        return redirect("connection_detail", name=connection.name)
    attempt_id = enqueue_rotation(connection=connection, actor=Actor.from_request(request))
    if request.htmx:
        return _panel(request, connection, attempt_id=attempt_id)
    messages.info(request, "Rotation queued; this page shows its progress.")
    return redirect(f"{detail_url(connection)}?rotation={attempt_id}#rotate-panel")


@require_GET
@can("view_connection")
def rotation_status(request: HtmxHttpRequest, name: str, attempt_id: uuid.UUID):
    connection = get_connection(name)
    attempt = rotation_attempt(attempt_id=attempt_id, connection=connection)
    context = {"connection": connection, "attempt_id": str(attempt_id)}
    if attempt is not None and attempt.state != RotationState.STARTED:
        context.update(finished=True, outcome=cached_outcome(str(attempt_id)) or _outcome_of(attempt))
    elif attempt is not None:
        context.update(stage="running", step=attempt.step)
    else:
        outcome = cached_outcome(str(attempt_id))
        if outcome is not None:
            context.update(finished=True, outcome=outcome)
        else:
            when = queued_at(str(attempt_id))
            if when is None:
                raise Http404("no such rotation")
            waited = int((timezone.now() - datetime.fromisoformat(when)).total_seconds())
            context.update(stage="queued", waited=waited, stalled=waited >= STALLED_AFTER)
    if not wants_fragment(request):
        return redirect(f"{detail_url(connection)}?rotation={attempt_id}#rotate-panel")
    if context.get("finished"):  # the history table is swapped in too
        context["rot"] = {"history": selectors.rotation_panel(connection=connection).history}
    response = TemplateResponse(request, f"{TEMPLATE}#rotate-status", context)
    if context.get("finished"):
        response["HX-Trigger"] = CREDENTIAL_CHANGED
    return response


def _outcome_of(attempt: RotationAttempt) -> dict:
    """An outcome for an attempt settled elsewhere (another page, the CLI, the reconciler)."""
    from ..rotation.core import outcome_from

    return outcome_from(attempt, attempt.error.split("\n")[0] if attempt.error else attempt.get_state_display()
                        ).as_dict()


@require_POST
@can("rotate_credentials")
def replace(request: HtmxHttpRequest, name: str):
    connection = get_connection(name)
    form = SecretForm(request.POST, provider=connection.provider)
    outcome = None
    if form.is_valid():
        try:
            result = staged_replace(connection=connection, secret=form.secret(), actor=Actor.from_request(request))
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            outcome = result.as_dict()
            form = None  # never echo a secret back, not even in a password field
    status = 200 if outcome and outcome["ok"] else 409 if outcome and outcome["state"] == BUSY else 422
    if request.htmx:
        response = _panel(request, connection, outcome=outcome, form=form, status=status)
        if outcome and outcome["ok"]:
            response["HX-Trigger"] = CREDENTIAL_CHANGED
        return response
    if outcome:
        (messages.success if outcome["ok"] else messages.error)(request, outcome["message"])
    else:
        messages.error(request, "The new secret was not accepted: " + errors_text(form))
    return redirect("connection_detail", name=connection.name)


@require_GET
@can("view_connection")
def rotation_history(request: HtmxHttpRequest, name: str):
    connection = get_connection(name, archived=True)
    return fragment_or_page(request, f"{TEMPLATE}#history",
                            {"connection": connection, "rot": rotation_context(connection)},
                            page=detail_url(connection), anchor="rotation-history-card")
