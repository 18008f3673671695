"""Cleverbridge back-end REST APIs (shared/VENDORS.md, "Cleverbridge").

HTTP Basic with an "API User"; Accept (json or xml) on every call; GET /connection/test.
"""

from .base import Field, Provider


class Cleverbridge(Provider):
    key = "cleverbridge"
    label = "Cleverbridge"
    docs = "shared/VENDORS.md#cleverbridge — https://rest.cleverbridge.com"
    default_base_url = "https://rest.cleverbridge.com"
    credential_fields = (
        Field("username", "API user name", help="A Cleverbridge user with the \"API User\" privilege."),
        Field("password", "Password", secret=True),
    )
    option_fields = (
        Field("accept_format", "Response format", required=False, choices=("json", "xml"), default="json",
              help="Sent as the Accept header on every call; both are parsed."),
    )
    test_proves = "GET /connection/test: the API is reachable and the user name and password are accepted."
