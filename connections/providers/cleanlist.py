"""Cleanlist WS-API (shared/VENDORS.md, "Cleanlist").

Authorization: Token; {ok, req_id, result} envelopes; /api/_refresh/ rescinds the old token at once.
"""

from .base import Field, Provider


class Cleanlist(Provider):
    key = "cleanlist"
    label = "Cleanlist"
    docs = "shared/VENDORS.md#cleanlist-ws-api — https://wsapi.staging.cleanlist.ca/api/"
    default_base_url = "https://wsapi.staging.cleanlist.ca/api"
    rescinds_on_refresh = True
    credential_fields = (
        Field("token", "API token", secret=True, help="Issued by Cleanlist support."),
    )
    option_fields = (
        Field("test_service", "Test service", required=False, default="pub_echo",
              help="pub_echo answers without checking the token; name a service the token is authorised for to prove it."),
    )
    test_proves = "POST /api/pub_echo/: the service is reachable. pub_echo does not check the token."

    def describe_test(self, options: dict) -> str:
        service = (options or {}).get("test_service") or "pub_echo"
        if service == "pub_echo":
            return self.test_proves
        return f"POST /api/{service}/: the service is reachable and the token is accepted for {service}."
