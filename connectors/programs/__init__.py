"""Program MIS connector: beneficiary lists imported page by page as ``programs.enrollment``
(mapping spec ``program_enrollment``), resuming from a per-program checkpoint."""

from connectors.programs.connector import RECORD_TYPE, ProgramsConnector

__all__ = ["RECORD_TYPE", "ProgramsConnector"]
