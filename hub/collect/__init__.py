"""The offline web intake page at ``/collect/`` for office and mobile registration teams.

``bp`` is registered through ``hub.api.BLUEPRINTS``. The page is a shell (it holds no data, so
it is public) around enketo-core, the form engine of ODK Central and KoboToolbox; it logs in and
talks to the hub only through the OpenRosa endpoints, as a field app does. Its script and
styles are built from ``web/`` by ``make assets`` into ``static/`` and shipped in the package.
"""

from hub.collect.views import bp

__all__ = ["bp"]
