"""The twins by provider key: the five built-ins of connections/providers/registry.py and the
declarative examples of vendors/ (github, stripe).

Adding a vendor: one module here with a Vendor subclass, one line below, one test class.
"""

from .cleanlist import Cleanlist
from .clever import Clever
from .cleverbridge import Cleverbridge
from .cloverdx import CloverDX
from .github import GitHub
from .stripe import Stripe
from .teletracker import TeleTracker

VENDORS = {cls.name: cls for cls in (Cleverbridge, Clever, CloverDX, TeleTracker, Cleanlist, GitHub, Stripe)}

__all__ = ["VENDORS", "Cleanlist", "Clever", "Cleverbridge", "CloverDX", "GitHub", "Stripe", "TeleTracker"]
