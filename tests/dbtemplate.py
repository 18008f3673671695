"""One migrated test database per run, cloned for each pytest-xdist worker (docs/testing.md, "The fast lane").

Without it every worker creates `<TEST_DB_NAME>_gwN` and runs all the migrations (partitions,
triggers) itself, at the same time as the others. With PostgreSQL and xdist workers, the controller
starts `python -m tests.dbtemplate build` as soon as pytest is configured, so the migrations run
while the workers start and collect; each worker then waits for it and copies the result with
`CREATE DATABASE <TEST_DB_NAME>_gwN TEMPLATE <TEST_DB_NAME>_template` (what Django's own test runner
does for --parallel), a fraction of a second. The controller drops the template at the end.

A worker that finds no template (the build failed: its error is on the terminal) migrates its own
database as before. A serial run (`make test`), --reuse-db, --nomigrations and SQLite never use this.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ENV = "SWITCHBOARD_TEST_DB_TEMPLATE"  # set by the controller: the template's name
ROOT = Path(__file__).resolve().parents[1]


def template_name() -> str:
    return f"{os.environ.get('TEST_DB_NAME', 'test_switchboard')}_template"


def _lock_path(name: str) -> Path:
    return Path(tempfile.gettempdir()) / f"{name}.lock"


def _nodb_connect():
    """A psycopg connection to the server's maintenance database, from the test settings."""
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    return psycopg.connect(host=db.get("HOST") or None, port=db.get("PORT") or None, user=db.get("USER") or None,
                           password=db.get("PASSWORD") or None, dbname="postgres", autocommit=True)


# ----------------------------------------------------------------------------- controller


def start_build(config) -> subprocess.Popen | None:
    """In the xdist controller: start building the template in the background, holding its lock
    (an flock shared with the child, released when the child exits)."""
    from dashboard import test_settings

    if (hasattr(config, "workerinput") or not getattr(config.option, "numprocesses", 0)
            or not test_settings.POSTGRES_AVAILABLE or config.getoption("reuse_db", False)
            or config.getoption("nomigrations", False)):
        return None
    name = template_name()
    lock = open(_lock_path(name), "w")  # noqa: SIM115 - handed to the child, closed here
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        process = subprocess.Popen([sys.executable, "-m", "tests.dbtemplate", "build", name], cwd=ROOT,
                                   pass_fds=[lock.fileno()], env={**os.environ, "PYTHONPATH": str(ROOT)})
    finally:
        lock.close()
    os.environ[ENV] = name  # the workers, started after this, inherit it
    return process


def finish_build(process: subprocess.Popen) -> None:
    """In the controller at the end: wait for the build if it is still running, drop the template."""
    process.wait()
    name = os.environ.pop(ENV, "")
    if name:
        with _nodb_connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    _lock_path(name).unlink(missing_ok=True)


# ----------------------------------------------------------------------------- builder process


def build(name: str) -> None:
    """Create and migrate the template database `name` as Django creates a test database."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.test_settings")
    django.setup()
    from django.db import connection

    connection.settings_dict.setdefault("TEST", {})["NAME"] = name
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    connection.close()  # nobody may be connected to a template while it is copied


# ----------------------------------------------------------------------------- worker


def clone_for_worker(connection, serialize: bool) -> str | None:
    """In a worker: wait for the template, then make this worker's test database a copy of it.
    Returns the name the connection had before (for destroy_test_db), or None to migrate instead."""
    from django.conf import settings

    name = os.environ.get(ENV)
    if not name or connection.vendor != "postgresql":
        return None
    with open(_lock_path(name), "a") as lock:  # the builder holds it until it exits
        fcntl.flock(lock, fcntl.LOCK_EX)
        fcntl.flock(lock, fcntl.LOCK_UN)
    target = connection.creation._get_test_db_name()
    with _nodb_connect() as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            return None
        conn.execute(f'DROP DATABASE IF EXISTS "{target}"')
        conn.execute(f'CREATE DATABASE "{target}" TEMPLATE "{name}"')
    old_name = connection.settings_dict["NAME"]
    connection.close()
    settings.DATABASES[connection.alias]["NAME"] = target
    connection.settings_dict["NAME"] = target
    if serialize:
        connection._test_serialized_contents = connection.creation.serialize_db_to_string()
    connection.ensure_connection()
    return old_name


if __name__ == "__main__":
    if sys.argv[1:2] == ["build"] and len(sys.argv) == 3:
        build(sys.argv[2])
    else:
        sys.exit("usage: python -m tests.dbtemplate build <name>")
