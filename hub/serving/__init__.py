"""The HTTP servers the hub runs its API in.

``gunicorn_app``: ``srhub serve``, gunicorn processes x threads for production, with
``head_first``'s worker (request heads read in the event loop, not in a thread).
``embedded``: ``srhub run``'s single-process server (waitress). Settings: ``[srhub.serving]``.
"""
