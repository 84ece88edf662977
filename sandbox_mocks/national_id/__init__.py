"""Sandbox national ID authority: MOSIP-like identity verification and eKYC over SOAP 1.1.

``create_app(NationalIdConfig(...))`` builds the Flask app; run it with
``python -m sandbox_mocks.national_id`` (port 8101) or ``sandbox_mocks.common.MockServer``.
"""

from sandbox_mocks.national_id.app import SOAP_PATH, create_app
from sandbox_mocks.national_id.config import NationalIdConfig

__all__ = ["SOAP_PATH", "NationalIdConfig", "create_app"]
