"""python manage.py connections <verb> — the CLI of DESIGN.md (like `airflow connections`).

Exit codes: 0 success, 1 the vendor said no, 2 bad input (nothing changed),
3 needs attention (a credential's state is uncertain; the message says what to do).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

from django.core.management.base import BaseCommand, CommandParser

from connections.cli import BAD_INPUT
from connections.cli.common import CLIError
from connections.crypto import SecretUnavailable

# verb -> module in connections/cli/
VERBS = {
    "add": "add",
    "list": "list",
    "show": "show",
    "test": "test",
    "call": "call",
    "rotate": "rotate",
    "recover": "recover",
    "export": "export",
    "import": "import_",
}


class Command(BaseCommand):
    stealth_options = ("stdin",)
    help = "Manage connections: add, list, show, test, call, rotate, recover, export, import."

    def add_arguments(self, parser: CommandParser) -> None:
        # Subparsers of a CommandParser are CommandParsers too (bad arguments: exit 2, a one-line message).
        sub = parser.add_subparsers(dest="verb", required=True)
        for verb, module_name in VERBS.items():
            if importlib.util.find_spec(f"connections.cli.{module_name}") is None:
                continue  # a verb whose module is not installed in this build
            module = importlib.import_module(f"connections.cli.{module_name}")
            module.add_arguments(sub.add_parser(verb, help=(module.__doc__ or "").strip().splitlines()[0]))

    def handle(self, *args, **options):
        module = importlib.import_module(f"connections.cli.{VERBS[options['verb']]}")
        stdin = options.get("stdin") or sys.stdin
        try:
            code = module.run(options, stdin, self.stdout, self.stderr)
        except CLIError as exc:
            self.stderr.write(f"error: {exc}")
            code = exc.code
        except SecretUnavailable as exc:
            self.stderr.write(f"error: {exc}")
            code = BAD_INPUT
        if code:
            sys.exit(code)
