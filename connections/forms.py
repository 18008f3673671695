"""Forms built from the provider registry's schemas. Validation lives in the services;
forms only collect input and show the services' messages on the right fields."""

from __future__ import annotations

from django import forms

from .providers import PROVIDERS, provider_choices
from .providers.schema import SchemaError


def add_schema_errors(form: forms.Form, exc: SchemaError) -> None:
    """Put a service's SchemaError messages on the form's fields (or the form itself).

    A key names a definition field ("base_url"), an option ("option test_path" -> option_test_path)
    or a credential field ("token" -> secret_token on the create form)."""
    for key, message in exc.errors.items():
        candidates = [key, f"option_{key.removeprefix('option ')}", f"secret_{key}"]
        field = next((name for name in candidates if name in form.fields), None)
        form.add_error(field, message)


def errors_text(form: forms.Form) -> str:
    """A form's errors on one line, for a flash message after a redirect."""
    return "; ".join(" ".join(v) if k == "__all__" else f"{k}: {' '.join(v)}" for k, v in form.errors.items())


class ConnectionForm(forms.Form):
    name = forms.CharField(max_length=64, help_text="Lowercase letters, digits and hyphens, e.g. clever-prod.")
    provider = forms.ChoiceField(choices=provider_choices)
    base_url = forms.CharField(label="Base URL", max_length=500, required=False,
                               help_text="Leave empty for the vendor's documented default.")
    test_interval = forms.IntegerField(min_value=0, initial=300, label="Test every (seconds)",
                                       help_text="0 turns scheduled tests off.")
    refresh_interval = forms.IntegerField(min_value=0, initial=0, label="Refresh every (seconds)",
                                          help_text="Proactive token refresh, for vendors that refresh. 0: never.")
    enabled = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args, provider: str | None = None, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.editing = editing
        if editing:
            del self.fields["name"]
            del self.fields["provider"]
            self.fields["base_url"].help_text += (" Changing the scheme, host or port retires the stored secret: "
                                                  "you will enter it again for the new host. A new path keeps it.")
        key = provider or self.data.get("provider") or self.initial.get("provider") or next(iter(PROVIDERS))
        self.provider_key = key if key in PROVIDERS else next(iter(PROVIDERS))
        prov = PROVIDERS[self.provider_key]
        for f in prov.option_fields:
            field = (forms.ChoiceField(choices=[(c, c) for c in f.choices], required=False)
                     if f.choices else forms.CharField(required=False, max_length=500))
            field.label = f.label
            field.help_text = f.help
            field.initial = f.default
            self.fields[f"option_{f.name}"] = field
        if not editing:
            for f in prov.credential_fields:
                self.fields[f"secret_{f.name}"] = secret_field(f)

    def options(self) -> dict:
        return {k[len("option_"):]: v for k, v in self.cleaned_data.items() if k.startswith("option_") and v}

    def secret(self) -> dict:
        return {k[len("secret_"):]: v for k, v in self.cleaned_data.items() if k.startswith("secret_") and v}


def secret_field(f) -> forms.Field:
    if f.choices:
        field = forms.ChoiceField(choices=[(c, c) for c in f.choices], required=False, initial=f.default)
    elif f.secret:
        # Write-only: never rendered back, not even masked (render_value=False).
        field = forms.CharField(required=False, widget=forms.PasswordInput(render_value=False,
                                                                           attrs={"autocomplete": "new-password"}))
    else:
        field = forms.CharField(required=False, max_length=500, widget=forms.TextInput(attrs={"autocomplete": "off"}))
    field.label = f.label + ("" if f.required else " (optional)")
    field.help_text = f.help
    return field


class SecretForm(forms.Form):
    """A new secret for an existing connection: every field entered afresh, nothing pre-filled."""

    def __init__(self, *args, provider: str, **kwargs):
        super().__init__(*args, **kwargs)
        for f in PROVIDERS[provider].credential_fields:
            self.fields[f.name] = secret_field(f)

    def secret(self) -> dict:
        return {k: v for k, v in self.cleaned_data.items() if v}


# -- users ---------------------------------------------------------------------------------

ROLE_CHOICES = [
    ("viewer", "Viewer: reads connections, logs, alerts and the audit trail"),
    ("operator", "Operator: a viewer who also runs tests and rotates credentials"),
    ("admin", "Admin: an operator who also manages connections, secrets, alerts and users"),
]


class UserCreateForm(forms.Form):
    username = forms.CharField(max_length=150, help_text="What they sign in with: letters, digits and @ . + - _",
                               widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "none",
                                                             "spellcheck": "false"}))
    role = forms.ChoiceField(choices=ROLE_CHOICES, initial="viewer", widget=forms.RadioSelect)


class UserRoleForm(forms.Form):
    role = forms.ChoiceField(choices=[(value, value.capitalize()) for value, _ in ROLE_CHOICES])


class UserActiveForm(forms.Form):
    active = forms.TypedChoiceField(choices=[("1", "reactivate"), ("0", "deactivate")], coerce=lambda v: v == "1")
