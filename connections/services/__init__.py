"""Write-side services (HackSoft style: keyword-only, typed). Split by area:

- audit.py      audit events
- vault.py      connections and credentials (create, update, replace secret, delete, import)
- testing.py    connection tests and calls through the one outbound client
- rotation lives in connections/rotation/ (DESIGN.md)
"""
