"""python manage.py connections <verb> — the CLI of DESIGN.md (like `airflow connections`).

Exit codes: 0 success, 1 the vendor said no, 2 bad input (nothing changed),
3 needs attention (a credential's state is uncertain; the message says what to do).
"""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand, CommandParser

from connections.cli import (
    BAD_INPUT,
    NEEDS_ATTENTION,
    VENDOR_SAID_NO,
    add,
    call,
    export,
    import_,
    recover,
    rotate,
    show,
    test,
)
from connections.cli import list as list_
from connections.cli.common import CLIError
from connections.crypto import SecretUnavailable

# exit code -> the "code" of a --json error
ERROR_CODES = {VENDOR_SAID_NO: "vendor_said_no", BAD_INPUT: "bad_input", NEEDS_ATTENTION: "needs_attention"}

# verb -> its module in connections/cli/
VERBS = {
    "add": add,
    "list": list_,
    "show": show,
    "test": test,
    "call": call,
    "rotate": rotate,
    "recover": recover,
    "export": export,
    "import": import_,
}


class Command(BaseCommand):
    stealth_options = ("stdin",)
    help = "Manage connections: add, list, show, test, call, rotate, recover, export, import."

    def add_arguments(self, parser: CommandParser) -> None:
        # Subparsers of a CommandParser are CommandParsers too (bad arguments: exit 2, a one-line message).
        sub = parser.add_subparsers(dest="verb", required=True)
        for verb, module in VERBS.items():
            module.add_arguments(sub.add_parser(verb, help=(module.__doc__ or "").strip().splitlines()[0]))

    def handle(self, *args, **options):
        module = VERBS[options["verb"]]
        stdin = options.get("stdin") or sys.stdin
        try:
            code = module.run(options, stdin, self.stdout, self.stderr)
        except (CLIError, SecretUnavailable) as exc:
            code = exc.code if isinstance(exc, CLIError) else BAD_INPUT
            if options.get("json"):
                # --json: every error is JSON on stdout, like the answers (scripts parse one stream).
                self.stdout.write(json.dumps({"error": {"code": ERROR_CODES.get(code, "error"), "message": str(exc)}}))
            else:
                self.stderr.write(f"error: {exc}")
        if code:
            sys.exit(code)
