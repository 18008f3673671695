"""Users, groups and applications from a JSON document (README.md shows the shape).

Idempotent: a user or application that exists (by username / client_id) is updated.
"""

from __future__ import annotations

from django.contrib.auth.models import Group, User
from oauth2_provider.models import Application

GRANTS = {
    "authorization-code": Application.GRANT_AUTHORIZATION_CODE,
    "client-credentials": Application.GRANT_CLIENT_CREDENTIALS,
}


def seed(data: dict) -> dict:
    users = [seed_user(u) for u in data.get("users", [])]
    apps = [seed_application(a) for a in data.get("applications", [])]
    return {"users": users, "applications": apps}


def seed_user(spec: dict) -> str:
    user, _ = User.objects.get_or_create(username=spec["username"])
    user.email = spec.get("email", "")
    user.first_name = spec.get("first_name", "")
    user.last_name = spec.get("last_name", "")
    user.is_active = spec.get("is_active", True)
    user.set_password(spec["password"])
    user.save()
    user.groups.set([Group.objects.get_or_create(name=name)[0] for name in spec.get("groups", [])])
    return user.username


def seed_application(spec: dict) -> str:
    """Confidential, authorization-code by default; such an app also accepts client credentials
    (validators.Validator)."""
    app = Application.objects.filter(client_id=spec["client_id"]).first() or Application(client_id=spec["client_id"])
    app.name = spec.get("name", spec["client_id"])
    app.client_secret = spec["client_secret"]
    app.client_type = Application.CLIENT_CONFIDENTIAL
    app.authorization_grant_type = GRANTS[spec.get("grant", "authorization-code")]
    app.redirect_uris = " ".join(spec.get("redirect_uris", []))
    app.post_logout_redirect_uris = " ".join(spec.get("post_logout_redirect_uris", []))
    app.skip_authorization = spec.get("skip_authorization", False)
    app.algorithm = spec.get("algorithm", Application.RS256_ALGORITHM)
    app.save()
    return app.client_id
