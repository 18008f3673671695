"""The authenticated egress proxy: /proxy/<connection>/<path> (docs/proxy.md).

An application sends its request with `Authorization: Bearer sbk_...`; Switchboard checks the key
and its scope, injects the connection's current credential, throttles with the shared limiter,
sends through the one outbound path (connections/client.py) and passes the vendor's answer back.

    paths.py    the target path taken from the raw request line and checked (no .., no encoded
                slashes, no absolute URLs, never another host)
    headers.py  what is forwarded each way (hop-by-hop and authentication headers dropped)
    views.py    the HTTP edge: authenticate, scope, bounded body, send, answer
"""
