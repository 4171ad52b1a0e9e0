"""Workers: what runs steps and activities.

The embedded engine runs them in its own process; a :class:`Worker` (``cerebelum
worker``) runs them for a ``cerebelum server``, in another process or on another machine.
"""

from ._local import run_step
from ._remote import Worker

__all__ = ["Worker", "run_step"]
