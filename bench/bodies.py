"""Vendor bodies are parsed in linear time (issue 12, item 6), in one run:

    .venv/bin/python bench/bodies.py [--repeat 5] [--before]

For pathological bodies of 64 KB and 1 MB (the client reads at most OUTBOUND_MAX_BODY_BYTES,
1 MB by default), times what the client does with a vendor's error answer: decode, parse_body
by Content-Type, then the provider's parse_error (error envelope, HTML title/h1 summary, first
line of text), for the base provider and every built-in vendor. Prints the best time (of --repeat) per
body at each size and the ratio 1 MB / 64 KB next to the size ratio (16): the goal is a ratio
no larger than the size ratio (linear or better). The worst case printed last.

--before also times the lazy regexes the HTML summary used until issue 12 on <h1> x N at 8 KB
and 16 KB, to show the quadratic growth they had (4x the time for 2x the size; 12 s at 64 KB).

No database, no network. Prints results only; exits 1 if a ratio exceeds the goal by 50%.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SMALL, LARGE = 64 * 1024, 1024 * 1024


def configure() -> None:
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "dashboard.settings", "DEBUG": "true", "SWITCHBOARD_SKIP_DOTENV": "1",
        "SECRET_KEY": "bench-only-not-secret", "DATABASE_URL": "sqlite:///:memory:",
        "CACHE_URL": "locmemcache://bench", "CELERY_BROKER_URL": "memory://", "LOG_LEVEL": "WARNING",
        "CREDENTIAL_KEYS": "mHWpJZ5C_8lJthykFMT0jVbJunxHg-_GB5Z4P0YBXsU=",
    })
    import django

    django.setup()


def fill(unit: bytes, size: int, prefix: bytes = b"") -> bytes:
    return (prefix + unit * (size // len(unit) + 1))[:size]


# (name, Content-Type, body of a given size)
CASES = [
    ("html <h1> x N", "text/html", lambda n: fill(b"<h1>", n)),
    ("html <title> x N", "text/html", lambda n: fill(b"<title>", n)),
    ("html <title> then '<' x N", "text/html", lambda n: fill(b"<", n, b"<title>")),
    ("html <title> of tags", "text/html", lambda n: fill(b"<b", n, b"<title>") + b"</title>"),
    ("html unclosed <h1 attr", "text/html", lambda n: fill(b"a", n, b"<h1 ")),
    ("html, no Content-Type", "", lambda n: fill(b"<h1>", n, b"<!doctype html>")),
    ("text one long line", "text/plain", lambda n: fill(b"a ", n)),
    ("json nested [ x N", "application/json", lambda n: fill(b"[", n)),
    ("json long string", "application/json", lambda n: fill(b"x", n - 2, b'"') + b'"'),
    ("xml nested <a> x N", "application/xml", lambda n: fill(b"<a>", n)),
    ("xml wide <a/> x N", "application/xml", lambda n: fill(b"<a/>", n - 7, b"<r>") + b"</r>"),
]


def handle(provider, content_type: str, body: bytes) -> str:
    from connections.providers.http import Reply, parse_body

    text = body.decode("utf-8", "replace")
    data, parse_error = parse_body(content_type, body, text)
    reply = Reply(status=400, headers={}, content_type=content_type, body=body, text=text, data=data,
                  parse_error=parse_error)
    return provider.parse_error(reply).message


def best_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()  # each run starts from the same heap: the previous run's garbage is not billed to it
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)  # the least disturbed run: 2 shared cores make the others noisy


def before(repeat: int) -> None:
    title = re.compile(rb"<title[^>]*>(.*?)</title>", re.I | re.S)
    h1 = re.compile(rb"<h1[^>]*>(.*?)</h1>", re.I | re.S)
    print("\nthe patterns used before issue 12, on <h1> x N:")
    previous = None
    for size in (8 * 1024, 16 * 1024):
        body = fill(b"<h1>", size)
        t = best_time(lambda body=body: (title.search(body), h1.search(body)), max(1, repeat // 2))
        growth = f"  ({t / previous:.1f}x for 2x the size)" if previous else ""
        print(f"  {size // 1024:>3} KB  {t * 1000:9.1f} ms{growth}")
        previous = t


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--before", action="store_true")
    args, _ = parser.parse_known_args()
    configure()
    from connections.providers import PROVIDERS
    from connections.providers.base import Provider

    providers = {"base": Provider(), **PROVIDERS}
    size_ratio = LARGE / SMALL
    print(f"best of {args.repeat}; goal: time(1 MB) / time(64 KB) <= {size_ratio:g} (the size ratio)")
    print(f"{'body':<28} {'provider':<13} {'64 KB':>10} {'1 MB':>10} {'ratio':>7}")
    worst = (0.0, "")
    for name, content_type, make in CASES:
        small, large = make(SMALL), make(LARGE)
        for key, provider in providers.items():
            t_small = best_time(lambda p=provider, b=small, ct=content_type: handle(p, ct, b), args.repeat)
            t_large = best_time(lambda p=provider, b=large, ct=content_type: handle(p, ct, b), args.repeat)
            # Below 0.2 ms the noise of a shared machine dominates: compare against that floor.
            ratio = t_large / max(t_small, 0.0002)
            if ratio > worst[0]:
                worst = (ratio, f"{name} / {key}")
            print(f"{name:<28} {key:<13} {t_small * 1000:8.2f}ms {t_large * 1000:8.2f}ms {ratio:7.1f}")
    verdict = "ok" if worst[0] <= size_ratio * 1.5 else "TOO SLOW"
    print(f"\nworst ratio {worst[0]:.1f} ({worst[1]}) against a size ratio of {size_ratio:g}: {verdict}")
    if args.before:
        before(args.repeat)
    return 0 if verdict == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
