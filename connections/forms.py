"""Forms built from the provider registry's schemas. Validation lives in the services;
forms only collect input and show the services' messages on the right fields."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from .choices import AlertCondition, ChannelKind, Operation, Outcome
from .providers import PROVIDERS, provider_choices, provider_for
from .selectors.log import STATUS_CLASSES, LogFilters


class ServiceErrorsMixin:
    """`form.add_error(None, exc)` with a service's ValidationError places each message on the
    right field, or on the form itself when no field matches.

    A service's key names a definition field ("base_url"), an option ("option test_path" ->
    option_test_path) or a credential field ("token" -> secret_token on the create form)."""

    def add_error(self, field, error):
        if field is None and isinstance(error, ValidationError) and hasattr(error, "error_dict"):
            for key, errors in error.error_dict.items():
                candidates = [key, f"option_{key.removeprefix('option ')}", f"secret_{key}"]
                super().add_error(next((name for name in candidates if name in self.fields), None), errors)
            return
        super().add_error(field, error)


def errors_text(form: forms.Form) -> str:
    """A form's errors on one line, for a flash message after a redirect; each named by its
    field's label, as the page shows it ("Reason: ..."), never by its key ("reason: ...")."""
    return "; ".join(" ".join(v) if k not in form.fields else f"{form[k].label}: {' '.join(v)}"
                     for k, v in form.errors.items())


class ConnectionForm(ServiceErrorsMixin, forms.Form):
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


class SecretForm(ServiceErrorsMixin, forms.Form):
    """A new secret for an existing connection: every field entered afresh, nothing pre-filled."""

    def __init__(self, *args, provider: str, **kwargs):
        super().__init__(*args, **kwargs)
        for f in provider_for(provider).credential_fields:  # none for a vendor whose definition is gone
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


# -- alerts --------------------------------------------------------------------------------

class ChannelForm(forms.Form):
    name = forms.CharField(max_length=100)
    kind = forms.ChoiceField(choices=ChannelKind.choices)
    target = forms.CharField(max_length=2000, label="Addresses or webhook URL",
                             help_text="E-mail: addresses separated by commas. Webhook: the full URL "
                                       "(Slack-compatible JSON with a text field). The URL is stored encrypted.",
                             widget=forms.TextInput(attrs={"autocomplete": "off"}))


# Conditions whose rule takes a threshold, and what it counts.
THRESHOLD_UNITS = {AlertCondition.HEADROOM_LOW: "% remaining", AlertCondition.CREDENTIAL_EXPIRING: "hours ahead"}


class AlertRuleForm(forms.Form):
    """One condition's rule. On a connection's page, `mode` chooses between following the
    default rule and the connection's own."""

    condition = forms.ChoiceField(choices=AlertCondition.choices, widget=forms.HiddenInput)
    mode = forms.ChoiceField(choices=[("default", "default"), ("own", "own rule")], initial="default")
    enabled = forms.BooleanField(required=False)
    threshold = forms.FloatField(required=False, min_value=0,
                                 widget=forms.NumberInput(attrs={"step": "any", "min": "0", "class": "small-input"}))
    cooldown_minutes = forms.IntegerField(min_value=0, initial=30, label="Cooldown (min)",
                                          widget=forms.NumberInput(attrs={"min": "0", "class": "small-input"}))

    def __init__(self, *args, per_connection: bool = False, editable: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        if not per_connection:
            del self.fields["mode"]
        for field in self.fields.values():
            field.disabled = not editable

    @property
    def threshold_unit(self) -> str:
        """"% remaining" or "hours ahead"; "" for a condition without a threshold."""
        return THRESHOLD_UNITS.get(self["condition"].value(), "")

    def rule(self) -> dict:
        """The rule as alerts.rule_set takes it; `follow_default` for a connection that drops its own."""
        data = self.cleaned_data
        return {"condition": data["condition"], "follow_default": data.get("mode") == "default",
                "enabled": data["enabled"], "cooldown_minutes": data["cooldown_minutes"],
                "threshold": data["threshold"] if data["condition"] in THRESHOLD_UNITS else None}


class BaseAlertRuleFormSet(forms.BaseFormSet):
    def clean(self):
        conditions = [f.cleaned_data.get("condition") for f in self.forms if f.cleaned_data]
        if len(conditions) != len(set(conditions)):
            raise forms.ValidationError("Each condition has one rule.")


AlertRuleFormSet = forms.formset_factory(AlertRuleForm, formset=BaseAlertRuleFormSet, extra=0,
                                         max_num=len(AlertCondition.choices), validate_max=True)


def alert_rule_formset(rows, *, data=None, per_connection: bool = False, editable: bool = True):
    """The rules form of the alerts page (defaults) or a connection's page, one form per condition,
    each carrying its selector row (`form.row`: label, default and own rule)."""
    initial = [{"condition": row.condition, "mode": "own" if row.own else "default",
                "enabled": bool(row.rule and row.rule.enabled),
                "threshold": row.rule.threshold if row.rule else None,
                "cooldown_minutes": row.rule.cooldown_minutes if row.rule else 30} for row in rows]
    formset = AlertRuleFormSet(data, initial=initial, prefix="rules",
                               form_kwargs={"per_connection": per_connection, "editable": editable})
    by_condition = {row.condition: row for row in rows}
    for form in formset:
        form.row = by_condition.get(form["condition"].value())
        if form.row:
            form.fields["enabled"].widget.attrs["aria-label"] = f"{form.row.label} on"
    return formset


class MaintenanceForm(forms.Form):
    hours = forms.FloatField(min_value=0.1, max_value=336, initial=1, label="Silence alerts for (hours)")
    reason = forms.CharField(max_length=300, required=False)


class AuditFilterForm(forms.Form):
    """The audit trail's filters, from the query string."""

    connection = forms.CharField(required=False, max_length=100)
    who = forms.CharField(required=False, max_length=150, label="Who")
    show = forms.ChoiceField(required=False, label="Show", choices=[
        ("", "Everything"), ("changes", "Changes only")])

    def selection(self) -> dict:
        self.is_valid()  # a bad field is left out; the others still filter
        data = self.cleaned_data
        return {"connection": data.get("connection") or None, "who": (data.get("who") or "").strip(),
                "changes_only": data.get("show") == "changes", "before": self.data.get("before")}


# -- the request log's filters ---------------------------------------------------------------

class LogFilterForm(forms.Form):
    """The request log's filters, read from the query string (as healthchecks reads its log filters).

    A bad value is named on the page and that filter left out; the other filters still apply."""

    STATUS_CHOICES = (*STATUS_CLASSES, "none")  # what the Status menu offers; any code 100-599 is valid too

    connection = forms.CharField(required=False, max_length=200)
    vendor = forms.ChoiceField(required=False, choices=lambda: [(k, p.label) for k, p in PROVIDERS.items()])
    operation = forms.ChoiceField(required=False, choices=[(v, v) for v in Operation.values])
    outcome = forms.ChoiceField(required=False, choices=Outcome.choices)
    status = forms.CharField(required=False, max_length=10)
    error_code = forms.CharField(required=False, max_length=200)
    request_id = forms.CharField(required=False, max_length=200)
    application = forms.CharField(required=False, max_length=64)
    since = forms.DateTimeField(required=False, label="From")
    until = forms.DateTimeField(required=False, label="To")
    tail = forms.BooleanField(required=False)

    def clean_status(self) -> str:
        status = self.cleaned_data["status"].lower()
        if status and not (status in self.STATUS_CHOICES or (status.isdigit() and 100 <= int(status) <= 599)):
            raise forms.ValidationError("a class (2xx to 5xx), an HTTP status from 100 to 599, or none (no answer).")
        return status

    def filters(self) -> LogFilters:
        """The valid filters as the selector takes them (call after is_valid())."""
        data = {name: value for name, value in self.cleaned_data.items() if value not in (None, "")}
        return LogFilters(**data)

    def problems(self) -> list[str]:
        """Each bad value, in words: 'Status “abc”: a class (2xx to 5xx), …'."""
        out = []
        for name, messages in self.errors.items():
            raw = str(self.data.get(name, ""))[:60]
            label = self.fields[name].label or name.replace("_", " ").capitalize()
            out.append(f"{label} “{raw}”: {' '.join(messages)}")
        return out


class ApplicationKeyForm(forms.Form):
    """An application of the egress proxy and its scope (services/appkeys.py validates)."""

    name = forms.CharField(max_length=64, required=False,
                           help_text="Lower-case letters, digits, - and _, e.g. billing-app.")
    connections = forms.MultipleChoiceField(choices=(), required=False, widget=forms.CheckboxSelectMultiple,
                                            label="Connections it may call")
    methods = forms.MultipleChoiceField(choices=(), required=False, widget=forms.CheckboxSelectMultiple,
                                        label="Methods", help_text="None ticked: any method.")

    def __init__(self, *args, connection_names=(), methods=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["connections"].choices = [(n, n) for n in connection_names]
        self.fields["methods"].choices = [(m, m) for m in methods]


class VendorUploadForm(forms.Form):
    """A declarative vendor definition: a YAML file, or its text pasted."""

    file = forms.FileField(required=False, label="Definition file (.yaml)")
    definition = forms.CharField(required=False, label="Or paste the YAML", strip=False,
                                 widget=forms.Textarea(attrs={"rows": 14, "spellcheck": "false", "class": "mono"}))

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("file") and not (cleaned.get("definition") or "").strip():
            raise forms.ValidationError("Choose a file or paste a definition.")
        return cleaned

    def text(self) -> str:
        from .providers.yaml_lines import MAX_FILE_BYTES
        from .services.vendors import decode_upload

        upload = self.cleaned_data.get("file")
        if upload:
            # Never more than the limit (and one byte to tell) is read, however large the upload.
            return decode_upload(upload.read(MAX_FILE_BYTES + 1))
        return self.cleaned_data["definition"]

    def show_text(self, text: str) -> None:
        """Show the text checked in the paste box: a browser never sends a chosen file again, so
        without it "The definition is valid. Press Save" was followed by "Choose a file"."""
        self.data = self.data.copy()
        self.data["definition"] = text
