"""The Vendors page: every vendor the registry knows, where it comes from, and the definition
files that did not load (with their problems)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from django.db.models import Count

from ..models import Connection
from ..providers import PROVIDERS, definition_files
from ..providers.registry import BUILT_IN, DefinitionFile


@dataclass
class VendorRow:
    key: str
    label: str
    declarative: bool
    source: str  # the module or the file name
    auth: str
    hosts: str
    limits: str
    test: str
    connections: int


def _auth_of(provider) -> str:
    definition = getattr(provider, "definition", None)
    if definition is not None:
        a = definition.auth
        return {"api_key": f"API key in {a.param_in} {a.param_name}", "bearer": f"{a.header}: {a.prefix} token".strip()}\
            .get(a.scheme, a.scheme.replace("_", " "))
    return ", ".join(f.label for f in provider.credential_fields)


def vendor_rows() -> list[VendorRow]:
    counts = dict(Connection.objects.values_list("provider").annotate(n=Count("id")))
    rows = []
    for key, provider in PROVIDERS.items():
        declarative = key not in BUILT_IN
        definition = getattr(provider, "definition", None)
        rows.append(VendorRow(
            key=key, label=provider.label, declarative=declarative,
            source=provider.source if declarative else f"providers/{type(provider).__module__.rsplit('.', 1)[-1]}.py",
            auth=_auth_of(provider),
            hosts=", ".join(definition.allowed_hosts) if definition
            else f"any (default {urlsplit(provider.default_base_url).hostname})",
            limits=provider.describe_limits(), test=provider.test_proves, connections=counts.get(key, 0)))
    return rows


def broken_files() -> list[DefinitionFile]:
    return [f for f in definition_files() if not f.ok]


def orphaned_connections() -> list[tuple[str, int]]:
    """Providers that connections use but the registry does not know (a file removed or broken)."""
    known = set(PROVIDERS)
    return sorted((key, n) for key, n in Connection.objects.values_list("provider").annotate(n=Count("id"))
                  if key not in known)
