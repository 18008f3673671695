"""Alerts: tell ops staff when a connection breaks, once when a problem begins and once when it ends.

    engine.py       conditions, rules and transitions (evaluated on a beat)
    delivery.py     one delivery per (event, channel), sent by Celery with retries; channel services
    maintenance.py  windows that keep transitions quiet
    channels/       the channel registry: one module per kind (email.py, webhook.py)
"""

from .channels import DeliveryFailed
from .delivery import channel_create, channel_delete, channel_test, deliver
from .engine import DEFAULT_RULES, effective_rules, ensure_default_rules, evaluate, rule_set
from .maintenance import in_maintenance, maintenance_create, maintenance_end

__all__ = [
    "DEFAULT_RULES", "DeliveryFailed", "channel_create", "channel_delete", "channel_test", "deliver",
    "effective_rules", "ensure_default_rules", "evaluate", "in_maintenance", "maintenance_create",
    "maintenance_end", "rule_set",
]
