"""Metrics and JSON logs on the real process tree (`manage.py runall`: two gunicorn workers, a Celery
worker with two pool processes, beat, the sandbox), started with LOG_FORMAT=json and METRICS_TOKEN:

- /metrics after traffic from the web (a row's Test button) and from the worker (Test all, the
  schedule): the request counters summed over every process equal the request log's rows;
- every line web, worker and beat wrote is a JSON object; web lines carry the request id that the
  response's X-Request-Id named, worker lines the connection; no secret's bytes anywhere in them.

Run: SYSTEM_TEST_PORT=... REQUIRE_SERVICES=1 .venv/bin/python -m pytest tests/system/test_observability.py
"""

from __future__ import annotations

import base64
import json
import re
import time
from urllib.parse import quote

import pytest
import requests

from connections.sandbox import DEMO_CREDENTIALS
from tests.system import harness

pytestmark = [pytest.mark.system]
TOKEN = "system-metrics-token-0123456789abcdef"
# Its own tree, beside the session's `product` (ports SYSTEM_TEST_PORT+10, +11).
PORT_OFFSET = 10


@pytest.fixture(scope="module")
def tree():
    running = harness.start("embedded", extra_env={"LOG_FORMAT": "json", "METRICS_TOKEN": TOKEN},
                            port_offset=PORT_OFFSET)
    yield running
    harness.stop(running)


def session_for(tree, role: str) -> requests.Session:
    s = requests.Session()
    page = s.get(f"{tree.url}/accounts/login/", timeout=10)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    done = s.post(f"{tree.url}/accounts/login/", data={"username": role, "password": harness.PASSWORD,
                                                      "csrfmiddlewaretoken": csrf},
                  headers={"Referer": f"{tree.url}/accounts/login/"}, timeout=10, allow_redirects=False)
    assert done.status_code == 302, done.text[:500]
    s.headers["X-CSRFToken"] = s.cookies["csrftoken"]
    s.headers["Referer"] = f"{tree.url}/"
    return s


def scrape(tree) -> str:
    response = requests.get(f"{tree.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert response.status_code == 200, response.text[:300]
    return response.text


def total(text: str, name: str, **labels) -> float:
    found = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{"):
            got = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
            if all(got.get(k) == v for k, v in labels.items()):
                found += float(line.rsplit(" ", 1)[1])
    return found


def db(tree, expression: str) -> str:
    code = f"from connections.models import *\nprint({expression})"
    return tree.manage("shell", "-c", code).stdout.strip().splitlines()[-1]


def test_metrics_add_up_across_web_and_worker(tree):
    assert requests.get(f"{tree.url}/metrics", timeout=10).status_code == 401
    operator = session_for(tree, "operator")
    # The web process sends these itself: two calls of an application through the egress proxy
    # (a Test runs in the worker).
    key = json.loads(tree.manage("appkeys", "add", "metrics-app", "--connections", "demo-clever", "--json").stdout)["key"]
    for _ in range(2):
        answer = requests.get(f"{tree.url}/proxy/demo-clever/v3.0/districts",
                              headers={"Authorization": f"Bearer {key}"}, timeout=60)
        assert answer.status_code == 200
    assert operator.post(f"{tree.url}/test-all/", timeout=30).status_code in (200, 302)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the worker runs Test all's five tests
        if int(db(tree, "RequestLog.objects.filter(operation='test').count()")) >= 5:
            break
        time.sleep(1)
    web_rows = int(db(tree, "RequestLog.objects.filter(operation='proxy').count()"))  # gunicorn's
    worker_rows = int(db(tree, "RequestLog.objects.filter(operation='test').count()"))  # the worker's
    assert web_rows >= 2 and worker_rows >= 5
    # Summed over every process's files, the counters equal the rows (polled: the schedule adds more).
    for _ in range(20):
        text = scrape(tree)
        rows = int(db(tree, "RequestLog.objects.count()"))
        if total(text, "switchboard_vendor_requests_total") == rows:
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"counters {total(text, 'switchboard_vendor_requests_total')} != {rows} request log rows")
    pids = {p.name.rsplit("_", 1)[1].split(".")[0] for p in (tree.workdir / "var" / "metrics").glob("counter_*.db")}
    assert len(pids) >= 2, f"counter files from one process only: {pids}"
    assert total(text, "switchboard_connection_health", connection="demo-clever", state="ok") == 1
    assert total(text, "switchboard_vendor_request_duration_seconds_count", connection="demo-clever") >= 2
    assert "switchboard_rate_limit_remaining{" in text


def _secret_forms(tree) -> list[bytes]:
    """The demo vendors' passwords and tokens, this tree's SECRET_KEY, credential key and metrics token,
    as they are and base64- and URL-encoded."""
    values = [v for secret in DEMO_CREDENTIALS.values() for k, v in secret.items() if k in ("password", "token")]
    values += [tree.env["SECRET_KEY"], tree.env["CREDENTIAL_KEYS"], TOKEN]
    return [form for value in values for form in (value.encode(), base64.b64encode(value.encode()).rstrip(b"="),
                                                 quote(value, safe="").encode())]


def test_json_lines_with_request_id_and_connection_and_no_secret(tree):
    operator = session_for(tree, "operator")
    answer = operator.post(f"{tree.url}/connections/demo-clever/test/", headers={"HX-Request": "true"}, timeout=60)
    rid = answer.headers["X-Request-Id"]
    time.sleep(1)
    lines = {name: [line for line in tree.log(name).splitlines() if line.strip()] for name in ("web", "worker", "beat")}
    objects = {}
    for name, text in lines.items():
        assert text, f"{name} wrote nothing"
        bad = []
        objects[name] = []
        for line in text:
            try:
                objects[name].append(json.loads(line))
            except ValueError:
                bad.append(line)
        assert not bad, f"{name}: lines that are not JSON objects: {bad[:5]}"
    web_for_request = [o for o in objects["web"] if o.get("request_id") == rid]
    assert web_for_request, f"no web line with request id {rid}"
    assert any(o["logger"] == "gunicorn.access" for o in web_for_request)
    assert any(o.get("connection", "").startswith("demo-") and o.get("request_id")
               for o in objects["worker"]), "no worker line names its connection and task"
    everything = b"".join((tree.log_dir / f"{name}.log").read_bytes() for name in ("web", "worker", "beat"))
    leaked = [form for form in _secret_forms(tree) if form in everything]
    assert not leaked, f"secret bytes in the logs: {len(leaked)} form(s)"
