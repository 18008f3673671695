"""The server's OAuth2Validator: OIDC claims from the Django user, groups included.

Also lets a confidential authorization-code application use the client-credentials grant
(django-oauth-toolkit allows one grant type per application; the tests want both on one).
"""

from __future__ import annotations

from oauth2_provider.models import AbstractApplication
from oauth2_provider.oauth2_validators import OAuth2Validator


class Validator(OAuth2Validator):
    # "groups" rides on the openid scope, so a client asking only for "openid" sees it too.
    oidc_claim_scope = {**OAuth2Validator.oidc_claim_scope, "groups": "openid", "preferred_username": "openid"}

    def get_additional_claims(self, request):
        user = request.user
        return {
            "preferred_username": user.get_username(),
            "email": user.email,
            "email_verified": bool(user.email),
            "name": user.get_full_name() or user.get_username(),
            "given_name": user.first_name,
            "family_name": user.last_name,
            "groups": sorted(user.groups.values_list("name", flat=True)),
        }

    def validate_grant_type(self, client_id, grant_type, client, request, *args, **kwargs):
        app = request.client
        if (grant_type == "client_credentials" and app.client_type == AbstractApplication.CLIENT_CONFIDENTIAL
                and app.authorization_grant_type == AbstractApplication.GRANT_AUTHORIZATION_CODE):
            return True
        return super().validate_grant_type(client_id, grant_type, client, request, *args, **kwargs)
