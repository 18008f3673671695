"""bench/soak.py's verdict: the guarantees checked at the end of a run, and the figures."""

from __future__ import annotations

from bench.outbound import control
from bench.soak_env import (
    CLEVER_PER_MINUTE,
    CLEVERBRIDGE_IN_FLIGHT,
    CLEVERBRIDGE_LIMIT,
    LOGS,
    PER_VENDOR,
    RESUME_BOUND,
    RSS_GROWTH_BOUND,
    VENDORS,
    WORKERS,
)


def report(self, alive: dict) -> int:
    """Check every guarantee, print the figures and a PASS/FAIL table; 1 if one failed."""
    import requests
    from django import db
    from django.db.models import Count

    from connections.models import Connection, Credential, RequestLog, RotationAttempt
    from connections.rotation import reconcile_rotations, spool

    db.connection.close()
    reconcile_rotations()  # what a dead or restarted worker left is settled, as beat would
    rows = RequestLog.objects.count()
    by_outcome = dict(RequestLog.objects.values_list("outcome").annotate(n=Count("id")))
    stats = {v: control(self.sandbox, "GET", f"{v}/stats") for v in VENDORS}
    sent = sum(s["requests"] for s in stats.values())
    too_many = sum(max(s.get("rate_limited", 0), s["by_status"].get("429", 0)) for s in stats.values())  # one 429 counts in both
    cb, cl = stats["cleverbridge"], stats["clever"]
    rotations = dict(RotationAttempt.objects.values_list("state").annotate(n=Count("id")))
    mismatched = []
    for connection in Connection.objects.filter(provider="cleanlist"):
        token = Credential.objects.get(connection=connection, state="active").secret.reveal()["token"]
        resp = requests.post(f"{self.sandbox}/cleanlist/api/email_verify/", json={"email": "a@example.com"},
                             headers={"Authorization": f"Token {token}"}, timeout=10)
        if resp.status_code != 200:
            mismatched.append(connection.name)
    live = stats["cleanlist"]["live_tokens"] - 1  # the twin's own demo token
    unsettled = RotationAttempt.objects.filter(state__in=["started", "outcome_unknown"]).count()
    spooled = len(spool.pending())
    growth = {n: (v[-1] - v[0]) / v[0] for n, v in self.rss.items() if len(v) == 2}
    resumes = [(o[3], o[1] - o[0], o[2] - o[1]) for o in self.outages]
    windows = [(o[0], (o[2] if o[2] == o[2] else o[1] + RESUME_BOUND) + 5) for o in self.outages]
    page_500_outside = [f for f in self.page_failures if not any(a <= f[0] <= b for a, b in windows)]
    pages_ok = self.counts["browse:ok"]

    checks = [
        ("no 429 from any twin", too_many == 0, f"{too_many}"),
        ("Cleverbridge max per second per IP <= 150", cb["max_per_second"] <= CLEVERBRIDGE_LIMIT,
         f"{cb['max_per_second']}"),
        ("Cleverbridge max in flight <= 4", cb["max_in_flight"] <= CLEVERBRIDGE_IN_FLIGHT, f"{cb['max_in_flight']}"),
        ("Clever max per minute per token <= 1200", cl["max_per_minute_by_token"] <= CLEVER_PER_MINUTE,
         f"{cl['max_per_minute_by_token']}"),
        ("no lost rotation: stored token live at the twin", not mismatched,
         f"{PER_VENDOR - len(mismatched)}/{PER_VENDOR} match" + (f" ({', '.join(mismatched[:5])})" if mismatched else "")),
        ("no lost rotation: one live token per connection", live == PER_VENDOR, f"{live} live for {PER_VENDOR}"),
        ("no rotation left unsettled, nothing spooled", unsettled == 0 and spooled == 0,
         f"{unsettled} unsettled, {spooled} spooled"),
        (f"worker RSS growth < {RSS_GROWTH_BOUND:.0%}", bool(growth) and all(g < RSS_GROWTH_BOUND for g in growth.values()),
         ", ".join(f"{n} {self.rss[n][0]:.0f}->{self.rss[n][1]:.0f} MB" for n in sorted(growth))),
    ]
    for what, down, resumed in resumes:
        checks.append((f"{what} restart: scheduled tests resume < {RESUME_BOUND:.0f} s", resumed <= RESUME_BOUND,
                       f"down {down:.1f} s, resumed {resumed:.1f} s after"))
    checks += [
        ("no page error outside outage windows", not page_500_outside,
         f"{pages_ok} pages OK, {len(self.page_failures)} failed in outages, {len(page_500_outside)} outside"
         + (f" e.g. {page_500_outside[0][1:]}" if page_500_outside else "")),
        ("every worker alive and answering the broker at the end",
         all(v == "up, answers" for n, v in alive.items() if n != "beat"),
         "; ".join(f"{n} {v}" for n, v in alive.items() if n != "beat")),
        ("beat alive at the end", alive.get("beat") == "up", alive.get("beat", "not started")),
    ]

    print("\n== soak: figures")
    print(f"run {self.args.seconds:.0f} s, broker {self.args.broker}, {len(self.outages)} restarts "
          f"({sum(o[3] == 'Redis' for o in self.outages)} Redis), {len(VENDORS) * PER_VENDOR} connections tested "
          f"every {self.args.interval} s by {WORKERS} workers + beat")
    print(f"requests reaching the twins: {sent}  (" + ", ".join(f"{v} {s['requests']}" for v, s in stats.items()) + ")")
    print(f"RequestLog rows: {rows}  by outcome: {by_outcome}")
    print(f"bulk calls: { {k: v for k, v in sorted(self.counts.items()) if k.startswith('bulk') and ':error' not in k} }")
    print(f"load errors during outages: { {k: v for k, v in sorted(self.counts.items()) if ':error' in k} }")
    print(f"rotations: enqueued {self.counts['rotations:enqueued']}, journal {rotations}")
    print(f"Cleverbridge twin: max/s {cb['max_per_second']} (limit 150), max in flight {cb['max_in_flight']} "
          f"(limit 4), concurrency violations {cb.get('concurrency_violations')}, 429 {cb['rate_limited']}")
    print(f"Clever twin: max/min per token {cl['max_per_minute_by_token']} (limit 1200), 429 {cl['rate_limited']}")
    print("\n== soak: guarantees")
    width = max(len(c[0]) for c in checks)
    for what, ok, figure in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {what:<{width}}  {figure}")
    failed = [c for c in checks if not c[1]]
    print(f"\n{'all guarantees held' if not failed else f'{len(failed)} guarantee(s) FAILED'}; logs in {LOGS}")
    return 1 if failed else 0
