"""Fixtures of the provider tests (helpers.py holds the plain functions)."""

from __future__ import annotations

import pytest

from connections import client


@pytest.fixture
def sleeps(monkeypatch):
    """Record the client's backoff sleeps instead of waiting them."""
    calls: list[float] = []
    monkeypatch.setattr(client, "_sleep", calls.append)
    return calls


@pytest.fixture
def tune(vendors):
    """Change a twin's settings for one test (reset() keeps settings, so restore them after)."""
    saved: list[tuple[str, dict]] = []

    def apply(vendor: str, **values):
        twin = vendors.vendor(vendor)
        saved.append((vendor, {k: getattr(twin, k) for k in values}))
        twin.configure(**values)
        return twin

    yield apply
    for vendor, values in reversed(saved):
        vendors.vendor(vendor).configure(**values)
