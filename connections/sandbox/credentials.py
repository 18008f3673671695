"""Fixed demo credentials the sandbox twins accept after start or reset().

They look like real secrets on purpose (so redaction and fingerprints are exercised), but they
are public constants: they open nothing but the local twins.
"""

DEMO_CREDENTIALS: dict[str, dict[str, str]] = {
    # Cleverbridge: a user with the "API User" privilege, HTTP Basic.
    "cleverbridge": {"username": "demo-api-user", "password": "AMS0ZatXNwHRGiw1XLrB5gSTkLLc6HfS"},
    # Clever: a district-app bearer token.
    "clever": {"token": "89479970f819d5332d1e24757c18b8b1b17d072d"},
    # CloverDX: a user with the Monitoring permission, HTTP Basic.
    "cloverdx": {"username": "switchboard", "password": "g0F5qyG7AUd1IavThR_JYUa8"},
    # TeleTracker: a user with two accounts; account_id is the one to use (not the first one).
    "teletracker": {"username": "ops@switchboard.example", "password": "SzBuNQHM9JUUb7bO2s_KFu_y",
                    "account_id": "10517"},
    # Cleanlist: a token allowed to use pub_echo and email_verify (not phone_verify).
    "cleanlist": {"token": "371b7a7506887fd91e2bff69eb8234ce97c05364"},
    # Declarative examples (vendors/*.yaml): a GitHub personal access token, a Stripe test secret key.
    "github": {"token": "ghp_Zr4vXk2LqP9sT7wYb3NdH6mJc1FgA8eU5oRi"},
    "stripe": {"token": "sk_test_51Qd8sKJ2vXy7Rt3mN9pL4wZb6HcF1gA0eU5oRiTq"},
}

# Clever instant-login (SSO) token: reaches /me, /districts/{id} and /users/{id} only.
CLEVER_SSO_TOKEN = "2bc7df56b2d05eaebfc41138a23b307d5aa7a823"

# CloverDX user WITHOUT the Monitoring permission (GET .../monitors answers 403).
CLOVERDX_NO_MONITORING_CREDENTIALS = {"username": "viewer", "password": "FmaCaqE3uw8nIZcw6W8YUbEo"}

# Every account of the TeleTracker demo user; omitting account_id with Basic auth runs on the first.
TELETRACKER_DEMO_ACCOUNTS = ("10482", "10517")
