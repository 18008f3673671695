"""connections test NAME [--json] — run the connection's test now (exit 0 ok, 1 failed, 3 needs attention)."""

from ..formatting import took_text
from ..models import Health
from ..services.audit import Actor
from . import NEEDS_ATTENTION, OK, VENDOR_SAID_NO
from .common import dump, get_connection


def add_arguments(parser):
    parser.add_argument("name")
    parser.add_argument("--json", action="store_true")


def run(options, stdin, stdout, stderr) -> int:
    from ..services.testing import connection_test

    connection = get_connection(options["name"])
    result = connection_test(connection=connection, actor=Actor.cli())
    if result.ok:
        code = OK
    elif connection.health == Health.NEEDS_ATTENTION:
        code = NEEDS_ATTENTION
    else:
        code = VENDOR_SAID_NO
    proves = connection.provider_obj.describe_test(connection.effective_options())
    if options["json"]:
        dump({**result.summary(), "name": connection.name, "health": connection.health,
              "health_reason": connection.health_reason, "outcome": str(result.outcome),
              "attempts": result.attempts, "tests_paused": connection.tests_paused, "proves": proves}, stdout)
        return code
    status = f"HTTP {result.status_code}" if result.status_code else str(result.outcome)
    took = took_text(result.duration_ms, result.attempts)
    line = f"{connection.name}: {'ok' if result.ok else 'FAILED'} — {status} in {took}"
    if result.vendor_request_id:
        line += f", vendor request id {result.vendor_request_id}"
    lines = [line]
    if not result.ok:
        lines.append(f"  error: {result.error_code or '-'}: {result.error_message}")
    lines.append(f"  health: {connection.health}" + (f" — {connection.health_reason}" if connection.health_reason else ""))
    if connection.tests_paused:
        lines.append(f"  {connection.paused_reason}")
    lines.append(f"  this test proves: {proves}")
    stdout.write("\n".join(lines) + "\n")
    return code
