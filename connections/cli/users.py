"""python manage.py users <verb>: accounts and roles for scripts.

    users list [--json]
    users add NAME --role R [--json]           prints a one-time set-password link, or takes
                                               {"password": "..."} on standard input
    users set-role NAME --role R [--json]
    users deactivate NAME [--json]
    users reactivate NAME [--json]
    users reset-password NAME [--json]         the old password stops working; prints a new link
    users reset-second-factor NAME [--json]    remove their authenticator app and recovery codes
                                               (a lost phone); an admin enrols a new one at sign-in

Exit codes: 0 done (or nothing to change), 2 bad input (nothing changed). Passwords are read
from standard input, never from arguments; the CLI never prints one.
"""

from __future__ import annotations

import json
from typing import IO

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.urls import reverse

from ..roles import ROLES
from ..selectors.users import UserRow, user_row, user_rows
from ..services import users as user_services
from ..services.audit import Actor
from . import OK
from .common import CLIError, dump, iso


def _validation_error(exc: ValidationError) -> CLIError:
    """Bad values are named by their field ("username: ..."); refusals (last admin, ...) read as they are."""
    errors = exc.error_dict.items() if hasattr(exc, "error_dict") else [("", exc.error_list)]
    parts, codes = [], []
    for field, items in errors:
        for error in items:
            text = " ".join(error.messages)
            named = field and error.code in (None, "bad_input", "weak_password")
            parts.append(f"{field}: {text}" if named else text)
            codes.append(error.code)
    return CLIError(f"nothing was changed: {'; '.join(parts)}", name=next((c for c in codes if c), "bad_input"))


def _get_user(name: str) -> User:
    user = User.objects.filter(username=name).first()
    if user is None:
        raise CLIError(f"no user named {name!r} (see `users list`)", name="not_found")
    return user


def _read_password(stdin: IO[str] | None) -> str | None:
    """{"password": "..."} from standard input when some is given; None for a terminal or empty input."""
    if stdin is None or stdin.isatty():
        return None
    raw = stdin.read()
    if not raw.strip():
        return None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        # The position only: echoing the input could print the password.
        raise CLIError(f"standard input is not valid JSON (line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(data, dict) or set(data) != {"password"} or not isinstance(data["password"], str):
        raise CLIError('standard input must be a JSON object with one key, e.g. {"password": "..."}')
    return data["password"]


def _row(row: UserRow) -> dict:
    return {"username": row.username, "role": row.role or None, "active": row.is_active,
            "has_password": row.has_password, "last_login": iso(row.last_login), "date_joined": iso(row.date_joined)}


def _summary(user: User) -> dict:
    return _row(user_row(user=user))


def _link(link: user_services.PasswordLink, site_url: str) -> dict:
    path = reverse("password_set", kwargs=link.url_kwargs)
    return {"set_password_url": f"{site_url}{path}" if site_url else None, "set_password_path": path,
            "expires_at": iso(link.expires_at)}


def _print_link(info: dict, stdout: IO[str]) -> None:
    where = info["set_password_url"] or (f"{info['set_password_path']}  (on your Switchboard's address; "
                                         "set SITE_URL or --site-url to print the full link)")
    stdout.write(f"One-time set-password link (shown once; expires {info['expires_at']}):\n  {where}\n")


# -- verbs -------------------------------------------------------------------------------------

def add_arguments(sub) -> None:
    roles = ", ".join(ROLES)
    p = sub.add_parser("list", help="list users, their roles and last sign-in")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("add", help="add a user; prints a one-time set-password link unless a password is on stdin")
    p.add_argument("name")
    p.add_argument("--role", required=True, help=roles)
    p.add_argument("--site-url", help="the address people open Switchboard on (default: SITE_URL)")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("set-role", help="give a user another role")
    p.add_argument("name")
    p.add_argument("--role", required=True, help=roles)
    p.add_argument("--json", action="store_true")
    for verb, text in (("deactivate", "stop a user signing in (their sessions end)"),
                       ("reactivate", "let a deactivated user sign in again")):
        p = sub.add_parser(verb, help=text)
        p.add_argument("name")
        p.add_argument("--json", action="store_true")
    p = sub.add_parser("reset-second-factor", help="remove a user's second factor (lost phone); audited")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("reset-password", help="make the old password stop working; prints a one-time link")
    p.add_argument("name")
    p.add_argument("--site-url", help="the address people open Switchboard on (default: SITE_URL)")
    p.add_argument("--json", action="store_true")


def run(options, stdin, stdout, stderr) -> int:
    verb = options["verb"]
    try:
        return VERBS[verb](options, stdin, stdout)
    except ValidationError as exc:
        raise _validation_error(exc) from None


def _list(options, stdin, stdout) -> int:
    items = [_row(r) for r in user_rows()]
    if options["json"]:
        dump(items, stdout)
        return OK
    header = ("NAME", "ROLE", "STATUS", "LAST SIGN-IN")
    rows = [(i["username"], i["role"] or "none",
             ("active" if i["active"] else "deactivated") + ("" if i["has_password"] or not i["active"]
                                                            else " (no password yet)"),
             i["last_login"] or "never") for i in items]
    widths = [max(len(str(r[n])) for r in [header, *rows]) for n in range(len(header))]
    for row in [header, *rows]:
        stdout.write("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() + "\n")
    return OK


def _add(options, stdin, stdout) -> int:
    password = _read_password(stdin)
    user = user_services.user_create(username=options["name"], role=options["role"], password=password,
                                     actor=Actor.cli())
    result = _summary(user)
    if password is None:
        result |= _link(user_services.password_link(user=user), options["site_url"] or settings.SITE_URL)
    if options["json"]:
        dump(result, stdout)
        return OK
    stdout.write(f"added {user.username} ({result['role']})" + (" with the password from standard input\n"
                                                                 if password is not None else "\n"))
    if password is None:
        _print_link(result, stdout)
    return OK


def _set_role(options, stdin, stdout) -> int:
    user = _get_user(options["name"])
    changed = user_services.user_set_role(user=user, role=options["role"], actor=Actor.cli())
    return _report(user, changed, f"{user.username} is now {options['role']}",
                   f"{user.username} is {options['role']} already; nothing changed", options, stdout)


def _set_active(active: bool):
    def verb(options, stdin, stdout) -> int:
        user = _get_user(options["name"])
        changed = user_services.user_set_active(user=user, active=active, actor=Actor.cli())
        state = "active" if active else "deactivated"
        return _report(user, changed, f"{user.username} is {state}" + ("" if active else
                                                                       "; their sessions have ended"),
                       f"{user.username} is {state} already; nothing changed", options, stdout)
    return verb


def _reset_password(options, stdin, stdout) -> int:
    user = _get_user(options["name"])
    link = user_services.user_reset_password(user=user, actor=Actor.cli())
    result = _summary(user) | _link(link, options["site_url"] or settings.SITE_URL)
    if options["json"]:
        dump(result, stdout)
        return OK
    stdout.write(f"the old password of {user.username} no longer works and their sessions have ended\n")
    _print_link(result, stdout)
    return OK


def _reset_second_factor(options, stdin, stdout) -> int:
    from ..services.second_factor import second_factor_remove

    user = _get_user(options["name"])
    changed = second_factor_remove(user=user, actor=Actor.cli())
    return _report(user, changed, f"the second factor of {user.username} was removed; they set up a new one "
                                  "at their next sign-in (admins must)",
                   f"{user.username} has no second factor; nothing changed", options, stdout)


def _report(user: User, changed: bool, done: str, unchanged: str, options, stdout) -> int:
    if options["json"]:
        dump(_summary(user) | {"changed": changed}, stdout)
    else:
        stdout.write((done if changed else unchanged) + "\n")
    return OK


VERBS = {"list": _list, "add": _add, "set-role": _set_role, "deactivate": _set_active(False),
         "reactivate": _set_active(True), "reset-password": _reset_password,
         "reset-second-factor": _reset_second_factor}
