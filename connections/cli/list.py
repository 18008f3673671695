"""connections list [--json]"""

from ..selectors import connection_list
from . import OK
from .common import connection_summary, dump


def add_arguments(parser):
    parser.add_argument("--json", action="store_true")


def run(options, stdin, stdout, stderr) -> int:
    items = [connection_summary(c) for c in connection_list()]
    if options["json"]:
        dump(items, stdout)
        return OK
    if not items:
        stdout.write("no connections (add one with `connections add NAME --provider KEY < secret.json`)\n")
        return OK
    header = ("NAME", "PROVIDER", "HEALTH", "CREDENTIAL", "LAST TEST")
    rows = [(i["name"], i["provider"], i["health"] + (" (tests paused)" if i["tests_paused"] else ""),
             f"v{i['credential_version']} {i['credential_fingerprint']}" if i["credential_version"] else "none",
             i["last_test_at"] or "never") for i in items]
    widths = [max(len(str(r[n])) for r in [header, *rows]) for n in range(len(header))]
    for row in [header, *rows]:
        stdout.write("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() + "\n")
    return OK
