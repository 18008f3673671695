"""python manage.py appkeys <verb>: application keys for the egress proxy (docs/proxy.md).

    appkeys add NAME --connections A,B [--methods GET,POST] [--json]   prints the key once
    appkeys list [--json]                                              never a key: its prefix
    appkeys scope NAME --connections A,B [--methods ...] [--json]
    appkeys rotate NAME [--json]                                       a new key, shown once; the old one stops
    appkeys revoke NAME [--json]

Exit codes: 0 done (also "revoked already"), 1 refused (rotating a revoked key), 2 bad input
(nothing changed). With --json, errors are {"error": {"code", "message"}} on stdout.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError

from ..selectors.appkeys import app_row, app_rows
from ..services import appkeys as services
from ..services.audit import Actor
from . import BAD_INPUT, OK, VENDOR_SAID_NO
from .common import CLIError, dump

REFUSED_CODES = {"revoked"}


def add_arguments(sub) -> None:
    p = sub.add_parser("add", help="create an application key (shown once)")
    p.add_argument("name")
    p.add_argument("--connections", required=True, help="comma-separated connection names it may call")
    p.add_argument("--methods", default="", help="comma-separated HTTP methods (default: any)")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("list", help="list applications, their scope and use (never their keys)")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("scope", help="change which connections and methods an application may use")
    p.add_argument("name")
    p.add_argument("--connections", required=True)
    p.add_argument("--methods", default="")
    p.add_argument("--json", action="store_true")
    for verb, text in (("rotate", "issue a new key (shown once); the old key stops working at once"),
                       ("revoke", "stop the key working")):
        p = sub.add_parser(verb, help=text)
        p.add_argument("name")
        p.add_argument("--json", action="store_true")


def _error(exc: ValidationError) -> CLIError:
    items = exc.error_dict.items() if hasattr(exc, "error_dict") else [("", exc.error_list)]
    parts, codes = [], []
    for field, errors in items:
        for error in errors:
            parts.append((f"{field}: " if field else "") + " ".join(error.messages))
            codes.append(error.code or "bad_input")
    code = codes[0] if codes else "bad_input"
    return CLIError(f"nothing was changed: {'; '.join(parts)}", VENDOR_SAID_NO if code in REFUSED_CODES else BAD_INPUT,
                    code)


def run(options, stdin, stdout, stderr) -> int:
    try:
        return VERBS[options["verb"]](options, stdout)
    except ValidationError as exc:
        raise _error(exc) from None


def _issued(issued: services.IssuedKey, what: str, options, stdout) -> int:
    row = app_row(name=issued.application.name)
    if options["json"]:
        dump(row.as_dict() | {"key": issued.key}, stdout)
        return OK
    stdout.write(f"{what} {row.name}: may call {', '.join(row.connections)} with "
                 f"{', '.join(row.methods) or 'any method'}\n"
                 f"Key (shown once; Switchboard keeps only its hash):\n  {issued.key}\n")
    return OK


def _add(options, stdout) -> int:
    issued = services.create_key(name=options["name"], connections=options["connections"],
                                 methods=options["methods"], actor=Actor.cli())
    return _issued(issued, "added", options, stdout)


def _rotate(options, stdout) -> int:
    return _issued(services.rotate_key(name=options["name"], actor=Actor.cli()), "rotated", options, stdout)


def _scope(options, stdout) -> int:
    services.set_scope(name=options["name"], connections=options["connections"], methods=options["methods"],
                       actor=Actor.cli())
    row = app_row(name=options["name"])
    if options["json"]:
        dump(row.as_dict(), stdout)
    else:
        stdout.write(f"{row.name} may call {', '.join(row.connections)} with {', '.join(row.methods) or 'any method'}\n")
    return OK


def _revoke(options, stdout) -> int:
    app = services.revoke_key(name=options["name"], actor=Actor.cli())
    row = app_row(name=app.name)
    if options["json"]:
        dump(row.as_dict(), stdout)
    else:
        stdout.write(f"{row.name} ({row.prefix}) is revoked: its key no longer works\n")
    return OK


def _list(options, stdout) -> int:
    rows = [r.as_dict() for r in app_rows()]
    if options["json"]:
        dump(rows, stdout)
        return OK
    header = ("NAME", "KEY", "CONNECTIONS", "METHODS", "STATUS", "CALLS 24H", "LAST USED")
    table = [(r["name"], r["key_prefix"] + "…", ",".join(r["connections"]), ",".join(r["methods"]),
              "active" if r["active"] else "revoked", str(r["calls_24h"]), r["last_used_at"] or "never")
             for r in rows]
    widths = [max(len(row[n]) for row in [header, *table]) for n in range(len(header))]
    for row in [header, *table]:
        stdout.write("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() + "\n")
    return OK


VERBS = {"add": _add, "list": _list, "scope": _scope, "rotate": _rotate, "revoke": _revoke}
