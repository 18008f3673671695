"""connections recover [--json] — import tokens from this machine's recovery spool.

A refresh writes the vendor's new token to the encrypted spool (RECOVERY_SPOOL_DIR) before it
commits it; when the commit failed (database down) or the worker died, the token is still
there. This imports each as its connection's active credential (journal state `recovered`),
deletes each file only after its commit, then tests the connection.

Exit codes: 0 nothing to do or everything imported; 3 a file could not be imported (kept; the
message says why and what to do).
"""

from __future__ import annotations

from ..models import Connection
from ..rotation import recover_spool
from ..rotation.core import run_connection_test
from ..services.audit import Actor
from . import NEEDS_ATTENTION, OK
from .common import dump

TROUBLE = ("failed", "unreadable", "orphaned", "conflict")


def add_arguments(parser):
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--no-test", action="store_true", help="do not test the connections afterwards")


def run(options, stdin, stdout, stderr) -> int:
    actor = Actor.cli()
    results = recover_spool(actor=actor)
    items = [r.as_dict() for r in results]
    if not options.get("no_test"):
        for item in items:
            if item["status"] != "imported":
                continue
            connection = Connection.objects.filter(name=item["connection"]).first()
            if connection is not None:
                result = run_connection_test(connection=connection, actor=actor)
                item["test"] = result.summary()
    code = NEEDS_ATTENTION if any(i["status"] in TROUBLE for i in items) else OK
    if options["json"]:
        dump({"recovered": items, "exit_code": code}, stdout)
        return code
    if not items:
        stdout.write("the recovery spool is empty: nothing to import\n")
        return OK
    for item in items:
        line = f"{item['connection'] or item['file']}: {item['status']} — {item['message']}"
        if "test" in item:
            test = item["test"]
            line += " Test: " + ("passed" if test["ok"] else f"FAILED ({(test.get('error') or {}).get('message')})")
        (stderr if item["status"] in TROUBLE else stdout).write(line + "\n")
    return code
