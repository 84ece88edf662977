"""Tax authority connector: income extracts (CSV or XML + manifest) from a drop folder.

Publishes each good row raw as ``tax.income_row`` (mapping spec ``tax_income_row``); refuses
whole files that are truncated, duplicated, wrongly encoded or carry a DTD; reports bad rows.
"""

from connectors.tax.connector import RECORD_TYPE, TaxFileConnector
from connectors.tax.report import TaxFileReport

__all__ = ["RECORD_TYPE", "TaxFileConnector", "TaxFileReport"]
