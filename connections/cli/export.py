"""connections export [--json] — connection definitions, never secrets."""

from ..services.vault import connection_definitions
from . import OK
from .common import dump


def add_arguments(parser):
    parser.add_argument("--json", action="store_true", help="the export is always JSON; accepted for symmetry")


def run(options, stdin, stdout, stderr) -> int:
    dump(connection_definitions(), stdout)
    return OK
