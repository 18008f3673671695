"""`manage.py runall` as `make run` starts it, on the embedded default in a temporary directory
(SQLite file, filesystem broker): a child that dies is started again within seconds, and a test
whose Celery process is killed mid-call is run again by another process and counted once."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from tests.embedded import ROOT, embedded_env, run
from tests.receivers import free_port
from tests.services.test_shared_state import poll, shell

PORT = free_port()  # per process: parallel runs (and pytest-xdist workers) do not collide


def children_of(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):  # any thread may have forked it
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except FileNotFoundError:
            pass
    return found


def talking_to(pids: list[int], port: int) -> list[int]:
    """The processes among pids with a TCP connection to 127.0.0.1:port."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[2].split(":")[1], 16) == port:
            inodes.add(f"socket:[{fields[9]}]")
    found = []
    for pid in pids:
        try:
            links = {os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()}
        except (FileNotFoundError, PermissionError):
            continue
        if links & inodes:
            found.append(pid)
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return ""


def child_pid(runall: subprocess.Popen, marker: str) -> int | None:
    found = [pid for pid in children_of(runall.pid) if marker in cmdline(pid)]
    return found[0] if found else None


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def site_answers() -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/accounts/login/", timeout=2) as response:
            return response.status == 200 and b"Sign in" in response.read()
    except OSError:
        return False


class Tree:
    def __init__(self, env: dict, log: Path, bind: str = f"127.0.0.1:{PORT}"):
        self.env, self.log = env, log
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "runall", "--bind", bind, "--web-workers", "1"],
            cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def pid(self, marker: str) -> int | None:
        return child_pid(self.proc, marker)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            raise


def tree_env(tmp: Path) -> dict:
    return {**embedded_env(tmp), "CELERY_BROKER_URL": "filesystem://", "BROKER_DIR": str(tmp / "broker"),
           "RECOVERY_SPOOL_DIR": str(tmp / "spool"), "DEMO_MODE": "false", "DEBUG": "true", "OUTBOUND_ALLOW_PRIVATE_NETWORKS": "true",
           "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("runall")
    env = tree_env(tmp)
    run(env, "manage.py", "migrate", "--no-input")
    tree = Tree(env, tmp / "runall.log")
    try:
        wait_for(site_answers, 90, "the site to answer")
        yield tree
    finally:
        code = tree.stop()
        out = tree.output()
        assert code == 0, out[-3000:]
        assert "Stopped web server, worker, beat." in out
        for marker in ("gunicorn", " worker ", " beat "):  # nothing left behind
            assert tree.pid(marker) is None


@pytest.mark.process
def test_a_killed_worker_and_web_server_are_restarted_within_seconds(tree):
    worker, web = tree.pid(" worker "), tree.pid("gunicorn")
    assert worker and web
    killed_at = time.monotonic()
    os.kill(worker, signal.SIGKILL)
    os.kill(web, signal.SIGKILL)
    for name, pid in (("worker", worker), ("web", web)):
        line = f"{name} (pid {pid}) was killed by SIGKILL; restarting it in 1 s"
        wait_for(lambda line=line: line in tree.output(), 10, f"runall to notice the {name} died")

    new_worker = wait_for(lambda: tree.pid(" worker "), 30, "the worker to be restarted")
    new_web = wait_for(lambda: tree.pid("gunicorn"), 30, "the web server to be restarted")
    assert (new_worker, new_web) != (worker, web)
    wait_for(site_answers, 30, "the restarted web server to answer")
    assert time.monotonic() - killed_at < 30
    assert tree.proc.poll() is None  # runall itself carries on

    # The new worker consumes: a task queued now runs.
    nonce = f"supervisor-{time.time_ns()}"
    shell(tree.env, f"from dashboard.celery import ping; ping.delay('{nonce}')")
    check = f"from django.core.cache import cache; print(cache.get('ping:{nonce}'))"
    wait_for(lambda: shell(tree.env, check) == "pong", 60, "the restarted worker to run a task")


class HangOnce:
    """A vendor on loopback that never answers its first request (until told to) and answers the next."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.requests: list[bytes] = []
        self.first = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            head = conn.recv(65536)
            self.requests.append(head)
            if len(self.requests) == 1:
                self.first.set()
                self._held = conn  # no answer: the Celery process running the test is killed meanwhile
                continue
            body = json.dumps({"data": [{"data": {"id": "d1", "name": "District"}}]}).encode()
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                         + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
            conn.close()

    def close(self):
        self.sock.close()


START = """
import json
from connections.services.audit import Actor
from connections.services.batch import test_all_start
from connections.services.vault import connection_create
connection_create(name="redelivered", provider="clever", base_url="http://127.0.0.1:{port}", secret={{"token": "t"}},
                  actor=Actor(label="test"))
print(json.dumps(test_all_start(actor=Actor(label="test"))))
"""


@pytest.mark.process
def test_a_test_whose_process_is_killed_mid_call_is_run_again_and_counted_once(tree):
    vendor = HangOnce()
    try:
        batch = json.loads(shell(tree.env, START.format(port=vendor.port)))["id"]
        assert vendor.first.wait(60), "the worker never called the vendor"
        worker = tree.pid(" worker ")
        # Kill the pool process running the test, as the OOM killer would; the worker's main process
        # lives on, sees it die, and hands the task back to the queue.
        running = wait_for(lambda: talking_to(children_of(worker), vendor.port), 10, "the process running the test")
        assert len(running) == 1
        os.kill(running[0], signal.SIGKILL)

        wait_for(lambda: len(vendor.requests) >= 2, 60, "the test to be delivered again")
        page = wait_for(lambda: (p := poll(tree.env, batch)) and "Tested 1 connection" in p["html"] and p, 60,
                        "the batch to finish")
        assert "1 failed" not in page["html"]
        assert len(vendor.requests) == 2
        assert tree.pid(" worker ") == worker  # the worker itself never went down
        assert "WorkerLostError" in tree.output()
    finally:
        vendor.close()


@pytest.mark.process
def test_a_child_that_keeps_crashing_at_start_stops_runall_with_a_clear_message(tmp_path):
    """The web server cannot start (its address is not valid): five crashes within a minute, each
    after a longer pause, then runall stops the worker and beat too and exits 1."""
    env = tree_env(tmp_path)
    run(env, "manage.py", "migrate", "--no-input")
    tree = Tree(env, tmp_path / "runall.log", bind="127.0.0.1:notaport")
    started = time.monotonic()
    try:
        code = tree.proc.wait(timeout=90)
    except subprocess.TimeoutExpired:
        tree.stop()
        raise AssertionError("runall kept restarting a child that cannot start:\n" + tree.output()[-3000:]) from None
    out = tree.output()
    assert code == 1, out[-3000:]
    assert time.monotonic() - started >= 1 + 2 + 4 + 8  # the pauses between the restarts
    for delay in (1, 2, 4, 8):
        assert f"exited with code 1; restarting it in {delay} s" in out
    assert "web crashed 5 times within 60 s; stopped everything." in out
    assert "Stopped web server, worker, beat." in out
    assert tree.pid(" worker ") is None and tree.pid(" beat ") is None


def test_only_tasks_safe_to_run_twice_go_back_to_the_queue_when_their_process_dies():
    """A refresh rescinds the old secret: run twice, the second would refresh with a dead secret (and
    reuse the journal row's attempt id). It is acknowledged when taken; the reconciler settles it."""
    from connections import tasks
    from dashboard.celery import app

    assert app.conf.task_reject_on_worker_lost is True
    for task in (tasks.run_test, tasks.run_test_in_batch, tasks.scheduled_test, tasks.deliver_alert):
        assert task.acks_late is True, task.name
    assert tasks.rotate_credentials.acks_late is False
