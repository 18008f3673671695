import pytest

from tests import factories


@pytest.mark.services
@pytest.mark.django_db
def test_create_connection_and_pages(admin_client_):
    c = factories.connection("clever", secret={"token": "tok-SECRET-abc123"})
    for url in ["/", "/connections/", f"/connections/{c.name}/", "/audit/", "/connections/new/"]:
        r = admin_client_.get(url)
        assert r.status_code == 200, url
        assert b"tok-SECRET-abc123" not in r.content
