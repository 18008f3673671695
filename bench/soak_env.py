"""bench/soak.py's environment: its own Redis, broker URLs, settings, small helpers.

The soak never touches the machine's shared Redis: it starts its own redis-server on
SOAK_REDIS_PORT (default 23091) without persistence, holding the cache and limiter (db 7) and,
with --broker redis, the broker (db 8), and restarts that one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/soak_switchboard"
REDIS_PORT = int(os.environ.get("SOAK_REDIS_PORT", "23091"))
REDIS_URL = f"redis://127.0.0.1:{REDIS_PORT}"
RABBITMQ = "amqp://guest:guest@127.0.0.1:5672/{vhost}"
QUEUE = "soak-celery"
VENDORS = ("cleverbridge", "clever", "cloverdx", "teletracker", "cleanlist")
PER_VENDOR = 40
WORKERS = 3
CLEVERBRIDGE_LIMIT, CLEVERBRIDGE_IN_FLIGHT, CLEVER_PER_MINUTE = 150, 4, 1200
RSS_GROWTH_BOUND = 0.5  # at most +50% between warm-up and the end, per worker
RESUME_BOUND = 90.0  # seconds from "the service is back" to scheduled tests succeeding again
RESUMED_AFTER = 10  # scheduled tests passing after the restart that count as "resumed"
LOGS = ROOT / "var" / "soak"


def broker_url(broker: str, vhost: str = "soak") -> str:
    """The soak's broker URL: db 8 of its own Redis, or RabbitMQ with its own vhost when
    rabbitmqctl can make one (else "/", where the queue name still keeps it apart)."""
    if broker == "redis":
        return f"{REDIS_URL}/8"
    made = sh("rabbitmqctl", "-q", "add_vhost", vhost) == 0 or sh("rabbitmqctl", "-q", "list_permissions", "-p", vhost) == 0
    if made and sh("rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*") == 0:
        return RABBITMQ.format(vhost=vhost)
    return RABBITMQ.format(vhost="")


def queue_length(url: str, purge: bool = False) -> int:
    """Messages waiting in the soak's queue on either broker (0 if the queue does not exist yet)."""
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=5) as conn:
            channel = conn.channel()
            if purge:
                return channel.queue_purge(QUEUE) or 0
            return channel.queue_declare(QUEUE, passive=True).message_count
    except Exception:
        return 0


def configure(db_url: str, broker: str) -> dict:
    env = {
        "DATABASE_URL": db_url, "CACHE_URL": f"{REDIS_URL}/7", "CELERY_BROKER_URL": broker, "DEBUG": "false",
        "SECRET_KEY": "soak-only-not-secret", "HTTPS_ONLY": "false", "ALLOWED_HOSTS": "testserver,127.0.0.1",
        "SWITCHBOARD_SKIP_DOTENV": "1", "CREDENTIAL_KEYS": "mHWpJZ5C_8lJthykFMT0jVbJunxHg-_GB5Z4P0YBXsU=",
        "OUTBOUND_ALLOW_PRIVATE_NETWORKS": "true", "DJANGO_SETTINGS_MODULE": "bench.soak_settings",
        "LOG_LEVEL": "WARNING", "CLEVERBRIDGE_RATE_LIMIT": str(CLEVERBRIDGE_LIMIT),
        "CLEVER_RATE_LIMIT_PER_MINUTE": str(CLEVER_PER_MINUTE), "OUTBOUND_MAX_WAIT_BACKGROUND": "10",
        "OUTBOUND_READ_TIMEOUT": "10", "RECOVERY_SPOOL_DIR": str(LOGS / "spool"), "PYTHONUNBUFFERED": "1",
    }
    os.environ.update(env)
    return {**os.environ, **env}


def sh(*cmd: str, check: bool = False) -> int:
    return subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=check).returncode


def redis_up() -> bool:
    return subprocess.run(["redis-cli", "-p", str(REDIS_PORT), "ping"], capture_output=True,
                          text=True).stdout.strip() == "PONG"


def redis_start() -> None:
    """Start the soak's own redis-server (no persistence: a restart loses every key) and wait for it."""
    (LOGS / "redis").mkdir(parents=True, exist_ok=True)
    sh("redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", str(REDIS_PORT), "--save", "",
       "--appendonly", "no", "--dir", str(LOGS / "redis"), "--logfile", str(LOGS / "redis.log"),
       "--pidfile", str(LOGS / "redis" / "redis.pid"))
    while not redis_up():
        time.sleep(0.1)


def redis_stop() -> None:
    sh("redis-cli", "-p", str(REDIS_PORT), "shutdown", "nosave")


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (a prefork worker's pool), in MB."""
    total = 0.0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) / 1024
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return float("nan")
    return total + sum(rss_mb(int(child)) for child in children)


def now_utc() -> datetime:
    return datetime.now(UTC)
