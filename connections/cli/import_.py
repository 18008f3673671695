"""connections import FILE — definitions only; everything is validated before anything is written."""

import json

from django.core.exceptions import ValidationError

from ..providers.schema import error_text
from ..services.audit import Actor
from ..services.vault import connections_import
from . import OK
from .common import CLIError, dump


def add_arguments(parser):
    parser.add_argument("file", help="a file written by `connections export` (- for standard input)")
    parser.add_argument("--json", action="store_true")


def run(options, stdin, stdout, stderr) -> int:
    path = options["file"]
    try:
        raw = stdin.read() if path == "-" else open(path, encoding="utf-8").read()
    except OSError as exc:
        raise CLIError(f"cannot read {path}: {exc.strerror}") from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CLIError(f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}); nothing was imported") from None
    try:
        created = connections_import(data=data, actor=Actor.cli())
    except ValidationError as exc:
        raise CLIError(f"nothing was imported: {error_text(exc)}") from None
    if options["json"]:
        dump({"imported": [c.name for c in created]}, stdout)
    else:
        stdout.write(f"imported {len(created)} connection(s): {', '.join(c.name for c in created) or '-'}\n"
                     "They have no secret yet: store one with `connections rotate NAME < secret.json`.\n")
    return OK
