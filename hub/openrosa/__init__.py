"""The OpenRosa server (``/openrosa``) and device authentication for field collection.

``bp`` is registered through ``hub.api.BLUEPRINTS``. ``views`` speaks the protocol (form list,
download, manifest, submission, device session), ``auth`` finds the caller (HTTP Digest, Basic
or a bearer token), ``digest`` holds RFC 7616 and the signed nonces, ``credentials`` the sealed
Digest password-equivalents, the Basic verification memory and the login throttle, and
``documents`` the XML answers. Forms and submissions go through ``hub.intake.contract``.
"""

from hub.openrosa.views import bp

__all__ = ["bp"]
