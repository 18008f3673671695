"""Run a CLI command (`connections`, `users`) in-process, capturing output and the exit code."""

from __future__ import annotations

import argparse
import io
import json
from dataclasses import dataclass

from django.core.management import CommandError, call_command


@dataclass
class CLIResult:
    code: int
    out: str
    err: str

    def json(self):
        return json.loads(self.out)


def run_cli(*args: str, stdin: str | dict | None = None, command: str = "connections") -> CLIResult:
    out, err = io.StringIO(), io.StringIO()
    if isinstance(stdin, dict):
        stdin = json.dumps(stdin)
    code = 0
    try:
        call_command(command, *args, stdout=out, stderr=err, stdin=io.StringIO(stdin or ""))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except (CommandError, argparse.ArgumentError) as exc:
        # In-process, argparse reports bad arguments by raising; the real CLI prints usage and exits 2.
        code = 2
        err.write(f"usage: {exc}")
    return CLIResult(code, out.getvalue(), err.getvalue())
