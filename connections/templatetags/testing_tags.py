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
