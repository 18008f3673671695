"""python manage.py users <verb>: accounts and roles for scripts (see connections/cli/users.py).

Exit codes: 0 success, 2 bad input (nothing changed). With --json, errors are JSON on stdout:
{"error": {"code": "...", "message": "..."}}.
"""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandParser

from connections.cli import users
from connections.cli.common import CLIError, dump


class Command(BaseCommand):
    stealth_options = ("stdin",)
    help = "Manage users: list, add, set-role, deactivate, reactivate, reset-password, reset-second-factor."

    def add_arguments(self, parser: CommandParser) -> None:
        users.add_arguments(parser.add_subparsers(dest="verb", required=True))

    def handle(self, *args, **options):
        stdin = options.get("stdin") or sys.stdin
        try:
            code = users.run(options, stdin, self.stdout, self.stderr)
        except CLIError as exc:
            if options.get("json"):
                dump({"error": {"code": exc.name, "message": str(exc)}}, self.stdout)
            else:
                self.stderr.write(f"error: {exc}")
            code = exc.code
        if code:
            sys.exit(code)
