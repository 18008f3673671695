"""python manage.py appkeys <verb>: application keys for the egress proxy (see connections/cli/appkeys.py).

Exit codes: 0 success, 1 refused, 2 bad input (nothing changed). With --json, errors are JSON on stdout:
{"error": {"code": "...", "message": "..."}}.
"""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandParser

from connections.cli import appkeys
from connections.cli.common import CLIError, dump


class Command(BaseCommand):
    stealth_options = ("stdin",)
    help = "Application keys for the proxy: add, list, scope, rotate, revoke (keys are shown once)."

    def add_arguments(self, parser: CommandParser) -> None:
        appkeys.add_arguments(parser.add_subparsers(dest="verb", required=True))

    def handle(self, *args, **options):
        stdin = options.get("stdin") or sys.stdin
        try:
            code = appkeys.run(options, stdin, self.stdout, self.stderr)
        except CLIError as exc:
            if options.get("json"):
                dump({"error": {"code": exc.name, "message": str(exc)}}, self.stdout)
            else:
                self.stderr.write(f"error: {exc}")
            code = exc.code
        if code:
            sys.exit(code)
