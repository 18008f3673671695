"""Start Switchboard as `make run` does — the real `manage.py runall` process tree — in a throwaway
environment, and stop it again.

Two backends:
  embedded   SQLite file, kombu filesystem broker and local-memory cache, all in a temporary directory
             (the default a newcomer gets);
  postgres   a dedicated PostgreSQL database (created here, dropped afterwards) and dedicated Redis
             database numbers with this run's key prefix.

The tree never reads the developer's .env (SWITCHBOARD_SKIP_DOTENV) and inherits nothing from the test
process's settings: its environment is built from scratch, with a .env written by the same code
`make run` uses on first start (dashboard/envfile.py). Each process of the tree writes its own log
(runall --log-dir), whose tail is printed when something fails.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from dashboard import envfile
from tests.receivers import free_port

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
PASSWORD = "system-test-password-3141"
ROLES = ("viewer", "operator", "admin")
PROCESSES = ("web", "worker", "beat", "sandbox")
# What each process prints once it serves (gunicorn once per worker).
READY_MARKERS = {"web": ("Booting worker with pid", 2), "worker": (" ready.", 1),
                 "beat": ("beat: Starting...", 1), "sandbox": ("Sandbox vendors on", 1)}
START_TIMEOUT = 90
# Redis database numbers no other part of the suite uses (tests use 1 and 2).
REDIS_CACHE_DB, REDIS_BROKER_DB = 11, 12


def ports(offset: int = 0) -> tuple[int, int]:
    """(web, sandbox): from SYSTEM_TEST_PORT + offset (web; sandbox is the next one) or any two free ports.
    A second tree running beside the session's `product` passes another offset."""
    base = os.environ.get("SYSTEM_TEST_PORT")
    return (int(base) + offset, int(base) + offset + 1) if base else (free_port(), free_port())


@dataclass
class Product:
    """A running tree: its URL, environment (for more manage.py processes) and process logs."""

    backend: str
    workdir: Path
    env: dict[str, str]
    url: str
    sandbox_url: str
    proc: subprocess.Popen | None = None
    groups: set[int] = field(default_factory=set)  # process groups of runall's children
    final_tails: str | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def log_dir(self) -> Path:
        return self.workdir / "logs"

    def manage(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
        """Run `python manage.py ARGS` against this instance (its own settings, never the tests')."""
        result = subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True,
                                text=True, timeout=timeout)
        if check and result.returncode:
            raise RuntimeError(f"manage.py {' '.join(args)} exited {result.returncode}:\n"
                               f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        return result

    def popen_manage(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([PYTHON, "manage.py", *args], cwd=ROOT, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def log(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def tails(self, lines: int = 40) -> str:
        if self.final_tails is not None:  # stopped: the logs are gone with the work directory
            return self.final_tails
        out = []
        for name in ("runall", *PROCESSES):
            text = self.log(name).splitlines()[-lines:]
            out.append(f"----- {self.backend}: {name} (last {len(text)} lines) -----\n" + "\n".join(text))
        return "\n".join(out)

    def sandbox(self, method: str, path: str, body: bytes | None = None) -> dict:
        """The sandbox's control API (/_sandbox/...), e.g. sandbox("GET", "cleverbridge/stats")."""
        import json

        req = urllib.request.Request(f"{self.sandbox_url}/_sandbox/{path}", data=body, method=method,
                                     headers={"Content-Type": "application/json"} if body is not None else {})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read() or b"{}")


def _environment(backend: str, workdir: Path, web_port: int, sandbox_port: int) -> dict[str, str]:
    dotenv = workdir / ".env"
    with contextlib.redirect_stdout(io.StringIO()):
        envfile.main(dotenv)  # the first-start .env of `make run`: fresh SECRET_KEY and credential key, demo on
    env = {k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR") if k in os.environ}
    env["HOME"] = str(workdir)  # gunicorn keeps its control socket under ~/.gunicorn
    for line in dotenv.read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    env.update({
        "SWITCHBOARD_SKIP_DOTENV": "1",
        "SWITCHBOARD_VAR_DIR": str(workdir / "var"),
        "SWITCHBOARD_BIND": f"127.0.0.1:{web_port}",
        "SANDBOX_PORT": str(sandbox_port),
        "SWITCHBOARD_ADMIN_USER": "admin",
        "SWITCHBOARD_ADMIN_PASSWORD": PASSWORD,
        "DJANGO_SETTINGS_MODULE": "dashboard.settings",
        "PYTHONUNBUFFERED": "1",
        # The tests sign the admin in with a password only; tests/dashboard/test_second_factor.py and
        # tests/e2e/test_second_factor.py cover the second factor that production requires.
        "SECOND_FACTOR_FOR_ADMINS": "false",
    })
    if backend == "embedded":
        env["DATABASE_URL"] = f"sqlite:///{workdir / 'var' / 'switchboard.sqlite3'}"
    else:
        pg, redis_url, prefix = _services()
        env["DATABASE_URL"] = pg
        env["CACHE_URL"] = f"{redis_url}/{REDIS_CACHE_DB}?key_prefix={prefix}"
        env["CELERY_BROKER_URL"] = f"{redis_url}/{REDIS_BROKER_DB}"
    return env


def _services() -> tuple[str, str, str]:
    """(PostgreSQL URL of this run's database, Redis URL without a database number, key prefix)."""
    prefix = os.environ.get("TEST_KEY_PREFIX", "sbtest") + "sys"
    base = os.environ.get("TEST_DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/test"
    parts = urlsplit(base)
    redis_url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379").rstrip("/")
    return parts._replace(path=f"/{prefix}").geturl(), redis_url, prefix


def _postgres(sql: str) -> None:
    import psycopg

    admin = urlsplit(_services()[0])._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql)


def _redis_clean() -> None:
    """Drop this run's keys: its prefix in the cache database, everything in its broker database."""
    import redis

    _, redis_url, prefix = _services()
    for db, pattern in ((REDIS_CACHE_DB, f"{prefix}:*"), (REDIS_BROKER_DB, "*")):
        client = redis.Redis.from_url(f"{redis_url}/{db}")
        keys = list(client.scan_iter(match=pattern, count=1000))
        if keys:
            client.delete(*keys)
        client.close()


def _prepare_services(backend: str) -> None:
    if backend != "postgres":
        return
    name = _services()[2]
    _postgres(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _postgres(f'CREATE DATABASE "{name}"')
    _redis_clean()


def _drop_services(backend: str) -> None:
    if backend != "postgres":
        return
    _postgres(f'DROP DATABASE IF EXISTS "{_services()[2]}" WITH (FORCE)')
    _redis_clean()


def add_users(product: Product) -> None:
    """One user per role, password PASSWORD (the admin comes from ensure_admin, as on first start)."""
    code = ("from django.contrib.auth.models import Group, User\n"
            f"for role in {['viewer', 'operator']!r}:\n"
            f"    u = User.objects.create_user(username=role, password={PASSWORD!r})\n"
            "    u.groups.add(Group.objects.get(name=role))\n")
    product.manage("shell", "-c", code)


def start(backend: str, *, extra_env: dict[str, str] | None = None, port_offset: int = 0) -> Product:
    """Set up like `make run` (Makefile, target run), start `manage.py runall`, wait until all serve.
    extra_env: more variables for every process (e.g. LOG_FORMAT=json); embedded only beside another
    tree, since the PostgreSQL backend's database name is per test run."""
    workdir = Path(tempfile.mkdtemp(prefix=f"switchboard-{backend}-"))
    web_port, sandbox_port = ports(port_offset)
    env = _environment(backend, workdir, web_port, sandbox_port) | (extra_env or {})
    product = Product(backend=backend, workdir=workdir, env=env, url=f"http://127.0.0.1:{web_port}",
                      sandbox_url=f"http://127.0.0.1:{sandbox_port}")
    product.log_dir.mkdir()
    started = time.monotonic()
    try:
        _prepare_services(backend)
        for step in (("migrate", "--no-input"), ("collectstatic", "--no-input", "--verbosity", "0"),
                     ("setup_schedules",), ("ensure_admin",), ("demo",)):
            product.manage(*step)
        add_users(product)
        product.timings["setup"] = time.monotonic() - started
        runall_log = open(product.log_dir / "runall.log", "ab")  # noqa: SIM115
        product.proc = subprocess.Popen([PYTHON, "manage.py", "runall", "--log-dir", str(product.log_dir)],
                                        cwd=ROOT, env=env, stdout=runall_log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        runall_log.close()
        _wait_ready(product)
        product.groups.update(_child_groups(product))
        product.timings["start"] = time.monotonic() - started
        return product
    except BaseException:
        tails = product.tails()
        stop(product)
        raise RuntimeError(f"Switchboard ({backend}) did not start:\n{tails}") from None


def _wait_ready(product: Product) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    pending = dict(READY_MARKERS)
    while pending:
        if product.proc.poll() is not None:
            raise RuntimeError(f"runall exited with code {product.proc.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"not ready after {START_TIMEOUT} s: {', '.join(pending)}")
        for name, (marker, count) in list(pending.items()):
            if product.log(name).count(marker) >= count:
                del pending[name]
        time.sleep(0.2)
    for url in (f"{product.url}/accounts/login/", f"{product.sandbox_url}/_sandbox/"):
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.2)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def _child_groups(product: Product) -> list[int]:
    """Process groups of runall's children (each runs in its own session), read from /proc."""
    if product.proc is None:
        return []
    groups = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ppid, pgid = int(fields[1]), int(fields[2])
        if ppid == product.proc.pid:
            groups.append(pgid)
    return groups


def stop(product: Product) -> None:
    """Ctrl-C for runall (it stops its children warmly); then SIGKILL to every group left; then clean up."""
    try:
        if product.proc is not None and product.proc.poll() is None:
            product.groups.update(_child_groups(product))
            os.killpg(product.proc.pid, signal.SIGTERM)
            try:
                product.proc.wait(timeout=25)
            except subprocess.TimeoutExpired:
                pass
            for pgid in (product.proc.pid, *product.groups):
                if _group_alive(pgid):
                    os.killpg(pgid, signal.SIGKILL)
            product.proc.wait()
        for pgid in product.groups:  # runall gone early: its children may still run
            if _group_alive(pgid):
                os.killpg(pgid, signal.SIGKILL)
    finally:
        _drop_services(product.backend)
        product.final_tails = product.tails()
        if not os.environ.get("SYSTEM_TEST_KEEP"):
            shutil.rmtree(product.workdir, ignore_errors=True)
