"""python manage.py vendors check [FILE ...] | list: declarative vendor definitions (connections/cli/vendors.py).

Exit codes: 0 every file valid, 2 a file has errors. With --json, the answer is JSON on stdout.
"""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandParser

from connections.cli import vendors


class Command(BaseCommand):
    stealth_options = ("stdin",)
    help = "Declarative vendors: check definition files (by line and field), list vendors."

    def add_arguments(self, parser: CommandParser) -> None:
        vendors.add_arguments(parser.add_subparsers(dest="verb", required=True))

    def handle(self, *args, **options):
        code = vendors.run(options, sys.stdin, self.stdout, self.stderr)
        if code:
            sys.exit(code)
