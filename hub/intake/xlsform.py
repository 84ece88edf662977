"""XLSForm -> ODK XForm with pyxform, and the checks an upload must pass.

A form author fixes an XLSForm in a spreadsheet, so every refusal here says what to change
there: pyxform's own message (it names the sheet and the row), or which setting is missing.
ODK Validate (Java) is not run: the server re-checks every instance itself
(``hub.intake.validation``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from hub.intake.xform import FormModel, XFormError, parse_form

# What a file name may end in, and pyxform's name for the type.
FILE_TYPES = {".xlsx": ".xlsx", ".xlsm": ".xlsm", ".xls": ".xls", ".md": ".md", ".csv": ".csv"}
MAX_XLSFORM_BYTES = 5 * 1024 * 1024
FORM_ID_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,47}$")
VERSION_RE = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


class FormConversionError(ValueError):
    """The upload is not a usable XLSForm; ``reason`` says what to fix in the spreadsheet."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ConvertedForm:
    form_id: str
    version: str
    title: str
    xform: bytes
    md5: str
    model: FormModel
    warnings: tuple[str, ...] = ()


def file_type_of(filename: str) -> str:
    lowered = filename.lower()
    for suffix, kind in FILE_TYPES.items():
        if lowered.endswith(suffix):
            return kind
    known = ", ".join(FILE_TYPES)
    raise FormConversionError(f"{filename or 'the file'}: an XLSForm is a {known} file")


def convert_xlsform(content: bytes, filename: str = "form.xlsx") -> ConvertedForm:
    """Convert an XLSForm (bytes) to an XForm; ``FormConversionError`` with a reason a form
    author can act on (pyxform's message with the sheet and row, or the missing setting)."""
    from pyxform.errors import PyXFormError
    from pyxform.xls2xform import convert

    if not content:
        raise FormConversionError("the file is empty")
    if len(content) > MAX_XLSFORM_BYTES:
        raise FormConversionError(f"the file is larger than {MAX_XLSFORM_BYTES // 1024} KiB")
    kind = file_type_of(filename)
    warnings: list[str] = []
    try:
        result = convert(content, warnings=warnings, file_type=kind)
    except PyXFormError as exc:
        if "not recognized as a supported type" in str(exc):  # pyxform could not open it
            raise FormConversionError(
                f"not a readable {kind} XLSForm; save it again from a spreadsheet program"
            ) from None
        raise FormConversionError(f"XLSForm: {exc}") from None
    except Exception as exc:  # a file pyxform cannot even open (not a workbook, bad zip)
        raise FormConversionError(
            f"not a readable {kind} XLSForm ({type(exc).__name__}); save it again from a "
            "spreadsheet program"
        ) from None
    xform = result.xform.encode("utf-8")
    try:
        model = parse_form(xform)
    except XFormError as exc:
        raise FormConversionError(f"the converted form is unusable: {exc}") from None
    if not FORM_ID_RE.match(model.form_id):
        raise FormConversionError(
            "settings sheet: form_id must start with a letter and hold at most 48 letters, "
            "digits, '_', '-' or '.'"
        )
    if not model.version:
        raise FormConversionError(
            "settings sheet: set a version (e.g. 2024120501); every upload of a form needs a "
            "new one"
        )
    if not VERSION_RE.match(model.version):
        raise FormConversionError(
            "settings sheet: version may hold at most 32 letters, digits, '_', '-' or '.'"
        )
    return ConvertedForm(
        form_id=model.form_id,
        version=model.version,
        title=model.title[:200] or model.form_id,
        xform=xform,
        md5=hashlib.md5(xform, usedforsecurity=False).hexdigest(),
        model=model,
        warnings=tuple(warnings),
    )
