"""The web UI: executions, one execution's graph and history (live), approvals, workers.

Served by ``cerebelum server`` at ``/`` (and by ``cerebelum ui``); its HTML, CSS and
JavaScript ship in ``cerebelum/ui/static`` and load nothing from elsewhere. See docs/ui.md.
"""

from ._routes import ui_routes

__all__ = ["ui_routes"]
