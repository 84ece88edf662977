"""National ID authority connector (SOAP, MOSIP-like verification and eKYC) and the small
look-up clients the prefill uses. See docs/connectors.md, "National ID authority"."""

from connectors.national_id.answers import NationalIdAnswer, PersonAnswer, VerificationAnswer
from connectors.national_id.connector import InvalidRequest, NationalIdConnector
from connectors.national_id.ids import is_valid_national_id, national_id_problem
from connectors.national_id.soap import CredentialsRejected, NotFoundError

__all__ = [
    "CredentialsRejected",
    "InvalidRequest",
    "NationalIdAnswer",
    "NationalIdConnector",
    "NotFoundError",
    "PersonAnswer",
    "VerificationAnswer",
    "is_valid_national_id",
    "national_id_problem",
]
