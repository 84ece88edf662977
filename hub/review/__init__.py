"""The supervisor review queue of field submissions and the visit records of households.

``hub.intake`` reports every applied field submission through ``ReviewSink.submitted``
(``hub.intake.contract``); ``ReviewQueue`` (``service.py``) implements it. Supervisors decide
(verify, return with reasons, reject with reasons) within their areas, through the API
(``hub.api.review``) or the dashboard page "Review queue" (``hub.ui``). Which state may follow
which is one table, ``states.TRANSITIONS``.
"""
