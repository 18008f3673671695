"""connections show NAME [--json] — everything but the secret (its fingerprint instead)."""

from ..models import CredentialState
from . import OK
from .common import connection_summary, dump, get_connection, iso


def add_arguments(parser):
    parser.add_argument("name")
    parser.add_argument("--json", action="store_true")


def run(options, stdin, stdout, stderr) -> int:
    connection = get_connection(options["name"])
    data = connection_summary(connection)
    data["options"] = connection.effective_options()
    data["test_interval"] = connection.test_interval
    data["refresh_interval"] = connection.refresh_interval
    data["paused_reason"] = connection.paused_reason
    data["test_proves"] = connection.provider_obj.describe_test(data["options"])
    data["last_test_result"] = connection.last_test_result or None
    data["credentials"] = [
        {"version": c.version, "state": c.state, "fingerprint": c.fingerprint, "source": c.source,
         "created_by": c.created_by_label, "created_at": iso(c.created_at), "activated_at": iso(c.activated_at)}
        for c in connection.credentials.defer("secret").order_by("-version")
    ]
    if options["json"]:
        dump(data, stdout)
        return OK
    active = [c for c in data["credentials"] if c["state"] == CredentialState.ACTIVE]
    lines = [
        f"name:        {data['name']}",
        f"provider:    {data['provider']}",
        f"base url:    {data['base_url']}",
        f"enabled:     {'yes' if data['enabled'] else 'no'}",
        f"health:      {data['health']}" + (f" — {data['health_reason']}" if data["health_reason"] else ""),
        f"last test:   {data['last_test_at'] or 'never'}",
        f"tests:       every {data['test_interval']} s" + (" (paused: " + data["paused_reason"] + ")" if data["tests_paused"] else ""),
        f"test proves: {data['test_proves']}",
        "credential:  " + (f"v{active[0]['version']} fingerprint {active[0]['fingerprint']} set by "
                            f"{active[0]['created_by'] or '-'} at {active[0]['created_at']}" if active else "none active"),
    ]
    lines += [f"option {k}: {v}" for k, v in data["options"].items()]
    stdout.write("\n".join(lines) + "\n")
    return OK
