"""The registry staff dashboard: server-rendered pages at ``/`` and under ``/ui/``.

``bp`` is registered through ``hub.api.BLUEPRINTS``. Login, sessions and CSRF live in
``security``; the numbers shown come from ``sources``, ``charts`` and ``deadletter_view``; every
button press is written by ``audit`` to the ``ui_audit`` table.
"""

from hub.ui.views import bp

__all__ = ["bp"]
