"""A separate process that runs one rotation through the CLI (tests/rotation/test_rotation_processes.py).

    python tests/rotation/rotation_worker.py NAME START_AT
waits until the Unix time START_AT (so many processes start at once), then runs
`connections rotate NAME --json` and exits with its exit code. The environment chooses the
database (TEST_DATABASE_URL) and, for crash tests, SWITCHBOARD_ROTATION_CRASH_AT.
"""

import io
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.test_settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402


def main() -> int:
    name, start_at = sys.argv[1], float(sys.argv[2])
    from django.db import connection

    connection.ensure_connection()  # connect before the start line, as a warm worker would be
    delay = start_at - time.time()
    if delay > 0:
        time.sleep(delay)
    out = io.StringIO()
    code = 0
    try:
        call_command("connections", "rotate", name, "--json", stdout=out, stderr=sys.stderr, stdin=io.StringIO(""))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    sys.stdout.write(out.getvalue())
    return code


if __name__ == "__main__":
    sys.exit(main())
