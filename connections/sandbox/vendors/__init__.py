"""The five twins by provider key (the keys of connections/providers/registry.py).

Adding a vendor: one module here with a Vendor subclass, one line below, one test class.
"""

from .cleanlist import Cleanlist
from .clever import Clever
from .cleverbridge import Cleverbridge
from .cloverdx import CloverDX
from .teletracker import TeleTracker

VENDORS = {cls.name: cls for cls in (Cleverbridge, Clever, CloverDX, TeleTracker, Cleanlist)}

__all__ = ["VENDORS", "Cleanlist", "Clever", "Cleverbridge", "CloverDX", "TeleTracker"]
