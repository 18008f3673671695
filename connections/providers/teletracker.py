"""TeleTracker REST API (shared/VENDORS.md, "TeleTracker").

Three auth schemes (Basic, Integrator, Bearer session); success/guid envelopes.
"""

from .base import Field, Provider

AUTH_SCHEMES = ("basic", "integrator", "bearer_session")


class TeleTracker(Provider):
    key = "teletracker"
    label = "TeleTracker"
    docs = "shared/VENDORS.md#teletracker-rest-api — https://teletracker.net/developer-documentation/rest-api/"
    default_base_url = "https://api.teletracker.net"
    credential_fields = (
        Field("username", "User name"),
        Field("password", "Password", secret=True),
        Field("account_id", "Account id", required=False,
              help="Always sent: without it a user with several accounts runs on an arbitrary one. Required for Integrator."),
        Field("auth_scheme", "Auth scheme", required=False, choices=AUTH_SCHEMES, default="basic",
              help="basic, integrator (Authorization: Integrator), or bearer_session (login + refresh tokens)."),
    )
    option_fields = (
        Field("account_id", "Account id", required=False,
              help="Overrides the account id stored with the credential."),
    )
    test_proves = "POST /auth/login with auth_only=1: the user name and password are valid (no session is created)."

    def clean_secret(self, data: object) -> dict:
        cleaned = super().clean_secret(data)
        if cleaned.get("auth_scheme") == "integrator" and not cleaned.get("account_id"):
            from .base import SchemaError

            raise SchemaError({"account_id": "required with the integrator auth scheme"})
        return cleaned
