"""Clever education data API (shared/VENDORS.md, "Clever").

Bearer token; X-RateLimit-* headers; 1200 requests per minute per token.
"""

from .base import Field, Provider


class Clever(Provider):
    key = "clever"
    label = "Clever"
    docs = "shared/VENDORS.md#clever — https://dev.clever.com/docs/rate-limiting"
    default_base_url = "https://api.clever.com"
    credential_fields = (
        Field("token", "Bearer token", secret=True, help="A district-app token (or an instant-login token)."),
    )
    option_fields = (
        Field("test_path", "Test path", required=False, default="/v3.0/districts",
              help="/v3.0/districts for district tokens, /v3.0/me for instant-login (SSO) tokens."),
    )
    test_proves = "GET /v3.0/districts: the token is valid and reaches its own district (not that Secure Sync shares data)."
