"""CloverDX Server REST API (shared/VENDORS.md, "CloverDX Server").

HTTP Basic plus an X-Requested-By header (CSRF) on every request.
"""

from .base import Field, Provider


class CloverDX(Provider):
    key = "cloverdx"
    label = "CloverDX Server"
    docs = "shared/VENDORS.md#cloverdx-server — https://doc.cloverdx.com (REST API chapter)"
    default_base_url = "https://cloverdx.example.com:8083"
    credential_fields = (
        Field("username", "User name"),
        Field("password", "Password", secret=True),
    )
    option_fields = (
        Field("test_path", "Test path", required=False, default="/clover/api/rest/v1/executions?pageSize=1",
              help="A cheap authenticated GET the user has permission for."),
        Field("requested_by", "X-Requested-By value", required=False, default="switchboard",
              help="CloverDX refuses REST calls without this header; any value works."),
    )
    test_proves = "An authenticated GET of the test path: the server is up, not suspended, and the user may read it."
