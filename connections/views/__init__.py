"""Views, one module per area: vault (connections, secrets, audit), ops (overview, logs, errors),
testing (test/call buttons), rotation (rotate action, progress, history)."""
