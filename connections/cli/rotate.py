"""connections rotate NAME [--json] [--stdin] — refresh at the vendor, or replace from stdin (verified).

Where the vendor has a refresh (Cleanlist; TeleTracker bearer sessions) the vendor issues the
new secret; otherwise the new secret is read from standard input as a JSON object, stored
staged, verified with the connection test, and promoted only if the test passes. `--stdin`
forces the second way for a refresh vendor (a token support issued, e.g. after a lost refresh).

Exit codes: 0 rotated; 1 the vendor refused or verification failed (the old credential is still
active) or another rotation is running; 2 bad input (nothing changed); 3 needs attention (the
message says what to do).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError

from ..providers.schema import error_text
from ..rotation import UNSUPPORTED, RotationOutcome, rotate, staged_replace, supports_refresh
from ..services.audit import Actor
from . import BAD_INPUT, NEEDS_ATTENTION, OK, VENDOR_SAID_NO
from .common import CLIError, dump, get_connection, read_secret


def rotation_exit_code(outcome: RotationOutcome) -> int:
    """DESIGN.md's exit codes for a rotation's outcome."""
    if outcome.ok:
        return OK
    if outcome.needs_attention:
        return NEEDS_ATTENTION
    return BAD_INPUT if outcome.state == UNSUPPORTED else VENDOR_SAID_NO


def add_arguments(parser):
    parser.add_argument("name")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--stdin", action="store_true", dest="secret_from_stdin",
                        help="replace with the secret on standard input even where the vendor has a refresh")


def run(options, stdin, stdout, stderr) -> int:
    connection = get_connection(options["name"])
    actor = Actor.cli()
    if supports_refresh(connection) and not options.get("secret_from_stdin"):
        outcome = rotate(connection=connection, actor=actor)
    else:
        secret = read_secret(stdin)
        try:
            outcome = staged_replace(connection=connection, secret=secret, actor=actor)
        except ValidationError as exc:
            raise CLIError(f"the new secret does not fit {connection.provider}: {error_text(exc)}",
                           BAD_INPUT) from None
    code = rotation_exit_code(outcome)
    if options["json"]:
        dump({**outcome.as_dict(), "exit_code": code}, stdout)
    else:
        (stdout if outcome.ok else stderr).write(outcome.message + "\n")
        if outcome.attempt_id:
            stdout.write(f"journal: {outcome.attempt_id} ({outcome.state})\n")
    return code
