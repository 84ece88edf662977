"""What the OpenRosa tests share: a small XLSForm turned into an XForm by pyxform, an in-memory
``IntakeBackend`` that serves it and takes its instances, an instance builder that fills the
primary instance of any downloaded XForm, and an RFC 7616 Digest client.

The in-memory backend is a test double of the intake core (``hub.intake``), written only from
the contract (``hub/intake/contract.py``): the conformance probe takes its backend from a
fixture, so the same probe runs against the real core.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import secrets
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from click.testing import CliRunner
from lxml import etree
from openpyxl import Workbook
from pyxform.xls2xform import convert

from hub.auth.roles import Principal
from hub.cli import main
from hub.intake.contract import (
    FormDocument,
    FormSummary,
    MediaFile,
    ReceiveOutcome,
    SubmissionRejected,
)
from hub.settings import Settings

SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
XFORMS_NS = "http://www.w3.org/2002/xforms"
JR_NS = "http://openrosa.org/javarosa"
# A 1x1 PNG: the form's one media file (the manifest lists it).
LOGO_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


def add_user(settings: Settings, name: str, role: str, password: str, *areas: str) -> None:
    """Create a user the way an administrator does: ``srhub users add NAME --role ROLE --area
    A`` (password on stdin), against the hub's database."""
    args = ["users", "add", name, "--role", role, "--password-stdin"]
    for area in areas:
        args += ["--area", area]
    env = {"SRHUB_DATABASE_URL": settings.database_url, "SRHUB_DATA_DIR": str(settings.data_dir)}
    result = CliRunner().invoke(main, args, input=password + "\n", env=env)
    assert result.exit_code == 0, result.output


def household_xlsform(
    form_id: str = "household_registration", version: str = "2026120501"
) -> bytes:
    """A small XLSForm (xlsx bytes): household name, area, members, a photo, a logo image."""
    book = Workbook()
    survey = book.active
    assert survey is not None
    survey.title = "survey"
    for row in (
        ("type", "name", "label", "required", "media::image"),
        ("note", "welcome", "Household registration", "", "logo.png"),
        ("text", "household_name", "Household name", "yes", ""),
        ("text", "admin_area", "Administrative area code", "yes", ""),
        ("integer", "members", "Number of members", "yes", ""),
        ("image", "photo", "Photo of the dwelling", "", ""),
    ):
        survey.append(row)
    settings = book.create_sheet("settings")
    settings.append(("form_id", "form_title", "version"))
    settings.append((form_id, "Household registration", version))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def xform_from_xlsform(xlsx: bytes) -> bytes:
    return convert(xlsform=xlsx, file_type=".xlsx").xform.encode("utf-8")


def build_instance(
    xform: bytes, values: Mapping[str, str], instance_id: str | None = None
) -> bytes:
    """A filled instance of ``xform``'s primary instance, as a field app would submit it: the
    root element with its ``id`` and ``version``, each leaf given in ``values`` (by name),
    ``meta/instanceID`` set to ``uuid:…``, no namespace on the data elements."""
    document = etree.fromstring(xform, SAFE_PARSER)
    primary = document.find(f".//{{{XFORMS_NS}}}model/{{{XFORMS_NS}}}instance")
    assert primary is not None, "the XForm has no primary instance"
    root = next(child for child in primary if isinstance(child.tag, str))
    filled = etree.fromstring(etree.tostring(root), SAFE_PARSER)
    # A repeat's jr:template copy only tells the app what a new repetition looks like; it is
    # not part of the filled instance (ODK XForms spec, "Repeats"): devices never send it.
    for template in filled.xpath("//*[@jr:template]", namespaces={"jr": JR_NS}):
        template.getparent().remove(template)
    for element in filled.iter():
        # Field apps write the instance without the XForms namespace (plain <data id=...>).
        name = etree.QName(element).localname
        element.tag = name
        if name in values:
            element.text = values[name]
    etree.cleanup_namespaces(filled)
    instance = filled.find(".//instanceID")
    assert instance is not None, "the XForm has no meta/instanceID"
    instance.text = instance_id or f"uuid:{uuid.uuid4()}"
    return etree.tostring(filled, xml_declaration=True, encoding="UTF-8")


@dataclass
class _Stored:
    xml: bytes
    attachments: dict[str, MediaFile] = field(default_factory=dict)


class InMemoryIntake:
    """An ``IntakeBackend`` holding one form and the instances it received, in memory."""

    def __init__(self, xlsx: bytes | None = None, area_field: str = "admin_area") -> None:
        self.xform = xform_from_xlsform(xlsx or household_xlsform())
        root = etree.fromstring(self.xform, SAFE_PARSER)
        data = root.find(f".//{{{XFORMS_NS}}}instance/*")
        assert data is not None
        title = root.findtext(".//{http://www.w3.org/1999/xhtml}title") or ""
        self.summary = FormSummary(
            form_id=data.get("id") or "",
            version=data.get("version") or "",
            title=title,
            md5_hash=hashlib.md5(self.xform, usedforsecurity=False).hexdigest(),
            media_files=("logo.png",),
        )
        self.media = {"logo.png": MediaFile("logo.png", "image/png", LOGO_PNG)}
        self.area_field = area_field
        self.received: dict[str, _Stored] = {}
        self.calls: list[tuple[str, str | None]] = []  # (submitter, device id)
        self._lock = threading.Lock()

    def forms_for(self, principal: Principal) -> Sequence[FormSummary]:
        return [self.summary]

    def form_document(self, form_id: str, principal: Principal) -> FormDocument | None:
        return FormDocument(self.summary, self.xform) if form_id == self.summary.form_id else None

    def form_media(self, form_id: str, name: str, principal: Principal) -> MediaFile | None:
        return self.media.get(name) if form_id == self.summary.form_id else None

    def receive_submission(
        self,
        xml: bytes,
        attachments: Sequence[MediaFile],
        principal: Principal,
        *,
        device_id: str | None = None,
    ) -> ReceiveOutcome:
        try:
            root = etree.fromstring(xml, SAFE_PARSER)
        except etree.XMLSyntaxError:
            raise SubmissionRejected("The submission is not an XML document.", 400) from None
        if root.get("id") != self.summary.form_id:
            raise SubmissionRejected(f"Unknown form {root.get('id')!r}.", 404)
        instance_id = _leaf(root, "instanceID")
        if not instance_id:
            raise SubmissionRejected("The submission has no meta/instanceID.", 400)
        area = _leaf(root, self.area_field)
        if not principal.may_touch_area(area):
            raise SubmissionRejected(
                f"Area {area or '(none)'} is outside the areas you cover.", 403
            )
        with self._lock:
            self.calls.append((principal.subject, device_id))
            stored = self.received.get(instance_id)
            if stored is not None and stored.xml != xml:
                return ReceiveOutcome(
                    "conflicting_duplicate",
                    instance_id,
                    "A different submission with this instanceID was already received.",
                )
            status = "duplicate" if stored is not None else "created"
            if stored is None:
                stored = self.received[instance_id] = _Stored(xml)
            for media in attachments:
                stored.attachments[media.name] = media
        message = "Already received; nothing to resend." if status == "duplicate" else "Received."
        return ReceiveOutcome(status, instance_id, message)


def _leaf(root: etree._Element, name: str) -> str | None:
    for element in root.iter():
        if isinstance(element.tag, str) and etree.QName(element).localname == name:
            return (element.text or "").strip() or None
    return None


# --- an RFC 7616 Digest client ----------------------------------------------------------------


_PARAM = re.compile(r'([A-Za-z0-9_-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)')


def parse_challenges(headers: Sequence[str]) -> list[tuple[str, dict[str, str]]]:
    """Each ``WWW-Authenticate`` header as (scheme, parameters) — one challenge per header, as
    the hub sends them."""
    found = []
    for header in headers:
        scheme, _, rest = header.partition(" ")
        params = {
            key.lower(): (value[1:-1].replace('\\"', '"') if value.startswith('"') else value)
            for key, value in _PARAM.findall(rest)
        }
        found.append((scheme.lower(), params))
    return found


@dataclass
class DigestClient:
    """Computes ``Authorization: Digest`` for one challenge, counting ``nc`` like a device."""

    username: str
    password: str
    challenge: dict[str, str]
    nc: int = 0
    cnonce: str = field(default_factory=lambda: secrets.token_hex(16))

    @property
    def algorithm(self) -> str:
        return self.challenge.get("algorithm", "MD5").upper()

    def _h(self, text: str) -> str:
        name = {"MD5": "md5", "SHA-256": "sha256"}[self.algorithm]
        return hashlib.new(name, text.encode("utf-8")).hexdigest()

    def header(self, method: str, uri: str, *, nc: int | None = None) -> str:
        if nc is None:
            self.nc += 1
            nc = self.nc
        realm, nonce = self.challenge["realm"], self.challenge["nonce"]
        ha1 = self._h(f"{self.username}:{realm}:{self.password}")
        ha2 = self._h(f"{method}:{uri}")
        count = f"{nc:08x}"
        response = self._h(f"{ha1}:{nonce}:{count}:{self.cnonce}:auth:{ha2}")
        return (
            f'Digest username="{self.username}", realm="{realm}", nonce="{nonce}", '
            f'uri="{uri}", algorithm={self.algorithm}, qop=auth, nc={count}, '
            f'cnonce="{self.cnonce}", response="{response}"'
        )
