"""connections call NAME METHOD PATH [--data JSON] [--repeat N] [--json] — send a request through the client."""

import json

from ..formatting import took_text
from ..services.audit import Actor
from ..services.testing import MAX_REPEAT, CallError, connection_call
from . import BAD_INPUT, OK, VENDOR_SAID_NO
from .common import CLIError, dump, get_connection

EXCERPT = 2000


def add_arguments(parser):
    parser.add_argument("name")
    parser.add_argument("method", help="GET, POST, PUT, PATCH or DELETE")
    parser.add_argument("path", help="relative to the connection's base URL, e.g. /connection/test")
    parser.add_argument("--data", help="a JSON value: the query for GET/DELETE, the JSON body otherwise")
    parser.add_argument("--repeat", type=int, default=1,
                        help=f"send it N times, one after another (throttled); at most {MAX_REPEAT}")
    parser.add_argument("--json", action="store_true")


def run(options, stdin, stdout, stderr) -> int:
    connection = get_connection(options["name"])
    data = None
    if options.get("data") is not None:
        try:
            data = json.loads(options["data"])
        except json.JSONDecodeError as exc:
            raise CLIError(f"--data is not valid JSON (line {exc.lineno}, column {exc.colno})") from None
    try:
        results = connection_call(connection=connection, method=options["method"], path=options["path"], data=data,
                                  actor=Actor.cli(), repeat=options.get("repeat") or 1)
    except CallError as exc:
        raise CLIError(str(exc), BAD_INPUT) from None
    code = OK if all(r.ok for r in results) else VENDOR_SAID_NO
    items = [{**r.summary(), "outcome": str(r.outcome), "attempts": r.attempts} for r in results]
    if options["json"]:
        last = results[-1]
        body = {"name": connection.name, **items[-1], "data": last.data, "results": items if len(items) > 1 else None,
                "ok_count": sum(1 for r in results if r.ok), "count": len(results)}
        dump({k: v for k, v in body.items() if v is not None or k in ("data", "status_code")}, stdout)
        return code
    for n, (r, item) in enumerate(zip(results, items, strict=True), start=1):
        status = f"HTTP {r.status_code}" if r.status_code else item["outcome"]
        prefix = f"[{n}/{len(results)}] " if len(results) > 1 else ""
        line = f"{prefix}{'ok' if r.ok else 'FAILED'} — {status} in {took_text(r.duration_ms, r.attempts)}"
        if r.vendor_request_id:
            line += f", vendor request id {r.vendor_request_id}"
        if not r.ok:
            line += f"\n  error: {r.error_code or '-'}: {r.error_message}"
        stdout.write(line + "\n")
    if len(results) == 1 and results[0].data is not None:
        stdout.write(json.dumps(results[0].data, indent=2, default=str)[:EXCERPT] + "\n")
    elif len(results) > 1:
        stdout.write(f"{sum(1 for r in results if r.ok)} of {len(results)} succeeded\n")
    return code
