"""What a vendor already counted in the current fixed window, for the limiter after it lost its own
count (Redis restarted without persistence: connections/throttle.py asks for a seed).

Two counts, the larger wins, plus a margin:
- ours: the RequestLog rows of this window of the connections that send with the same secret
  (they share the vendor's per-token window), every attempt that may have reached the vendor;
- the vendor's: X-RateLimit-Limit minus Remaining from the freshest snapshot those connections
  stored inside this window, before its reset (client._update_snapshot, at most once a second per
  process): it also counts requests from elsewhere (another installation, a script) with the token.
The margin, SEED_MARGIN_SECONDS at the rule's average rate, covers requests admitted but not yet
logged when the state was lost.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from django.db.models import Q
from django.utils import timezone

from ..models import Connection, Credential, Outcome, RequestLog
from ..providers.http import ThrottlePlan
from .limiter import Seed

SEED_MARGIN_SECONDS = 2.0


def window_seed(connection: Connection, credential: Credential, plan: ThrottlePlan) -> Seed | None:
    """A seed for the plan's window rule (None when it has none)."""
    rule = next((r for r in plan.rules if r.kind == "window"), None)
    if rule is None:
        return None

    def seed(window_start: float) -> int:
        sharing = Q(pk=connection.pk) | Q(provider=connection.provider, credentials__state="active",
                                          credentials__fingerprint=credential.fingerprint)
        rows = (Connection.objects.filter(sharing)
                .filter(rl_observed_at__gte=datetime.fromtimestamp(window_start, UTC),
                        rl_limit__isnull=False, rl_remaining__isnull=False)
                .filter(Q(rl_reset_at__isnull=True) | Q(rl_reset_at__gt=timezone.now()))
                .values_list("rl_limit", "rl_remaining"))
        vendor = max((max(0, limit - remaining) for limit, remaining in rows), default=0)
        ours = (RequestLog.objects
                .filter(connection__in=Connection.objects.filter(sharing).values("pk"),
                        started_at__gte=datetime.fromtimestamp(window_start, UTC))
                .exclude(status_code__isnull=True, outcome=Outcome.THROTTLED)  # held back: never sent
                .count())
        return max(vendor, ours) + math.ceil(rule.limit * SEED_MARGIN_SECONDS / rule.period)

    return seed
