"""E-mail alerts, through Django's mail backend (EMAIL_* settings)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.views.decorators.debug import sensitive_variables

from ...models import AlertDelivery
from .base import Channel


class EmailChannel(Channel):
    kind = "email"
    label = "e-mail"

    def clean(self, target: str) -> tuple[dict, str]:
        target = (target or "").strip()
        addresses = [a.strip() for a in target.replace(";", ",").split(",") if a.strip()]
        if not addresses:
            raise ValidationError({"target": "give one or more e-mail addresses, separated by commas"})
        for address in addresses:
            try:
                validate_email(address)
            except ValidationError:
                raise ValidationError({"target": f"{address!r} is not an e-mail address"}) from None
        return {"to": addresses}, ", ".join(addresses)

    @sensitive_variables()
    def send(self, delivery: AlertDelivery) -> None:
        config = delivery.channel.config.reveal()
        send_mail(delivery.subject, delivery.body, settings.DEFAULT_FROM_EMAIL, config["to"], fail_silently=False)
