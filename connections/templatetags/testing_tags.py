"""Template helpers of the Test panel (templates/connections/testing.html)."""

from django import template

register = template.Library()


@register.filter
def test_proves(connection) -> str:
    """The one line saying what this connection's test proves (and what it does not)."""
    try:
        return connection.provider_obj.describe_test(connection.effective_options())
    except Exception:  # an unknown provider must not break a list page
        return ""


@register.filter
def took(result: dict, sep: str = " over ") -> str:
    """A test's whole duration and its attempts ("16.9 s over 6 attempts"), from last_test_result."""
    from connections.formatting import took_text

    return took_text((result or {}).get("duration_ms"), (result or {}).get("attempts"), sep=sep)
