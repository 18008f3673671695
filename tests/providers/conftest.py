"""Fixtures of the provider tests (helpers.py holds the plain functions)."""

from __future__ import annotations

import pytest

from connections.outbound import client


@pytest.fixture
def sleeps(monkeypatch):
    """Record the client's backoff sleeps instead of waiting them."""
    calls: list[float] = []
    monkeypatch.setattr(client, "_sleep", calls.append)
    return calls
