"""connections add NAME --provider KEY --base-url URL [--option K=V ...] < secret.json"""

from django.core.exceptions import ValidationError

from ..providers.schema import error_text
from ..services.audit import Actor
from ..services.vault import connection_create
from . import OK
from .common import CLIError, connection_summary, dump, parse_options, read_secret


def add_arguments(parser):
    parser.add_argument("name")
    parser.add_argument("--provider", required=True,
                        help="a vendor key: cleverbridge, clever, cloverdx, teletracker, cleanlist, or a declarative "
                             "vendor of PROVIDERS_DIR (manage.py vendors list)")
    parser.add_argument("--base-url", help="defaults to the vendor's documented base URL")
    parser.add_argument("--option", action="append", metavar="K=V", help="a non-secret connection option")
    parser.add_argument("--test-interval", type=int, help="seconds between scheduled tests (0: off)")
    parser.add_argument("--refresh-interval", type=int, help="seconds between proactive refreshes (0: off)")
    parser.add_argument("--disabled", action="store_true", help="create it disabled")
    parser.add_argument("--json", action="store_true")


def run(options, stdin, stdout, stderr) -> int:
    opts = parse_options(options["option"])
    secret = read_secret(stdin)
    try:
        connection = connection_create(
            name=options["name"], provider=options["provider"], base_url=options["base_url"], options=opts,
            secret=secret, test_interval=options["test_interval"], refresh_interval=options["refresh_interval"],
            enabled=not options["disabled"], actor=Actor.cli(),
        )
    except ValidationError as exc:
        raise CLIError(f"nothing was changed: {error_text(exc)}") from None
    summary = connection_summary(connection)
    if options["json"]:
        dump(summary, stdout)
    else:
        stdout.write(f"added {connection.name} ({connection.provider}, {connection.base_url}); "
                     f"credential v{summary['credential_version']} fingerprint {summary['credential_fingerprint']}\n")
    return OK
