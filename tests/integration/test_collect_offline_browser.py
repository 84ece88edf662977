"""The offline intake page in a real headless Chromium (Debian's package, driven by playwright).

A field worker logs in, the form is fetched, transformed and rendered by enketo-core; the network
goes off; two households are filled and queued; the page is reloaded with the network still off
(the service worker serves it, IndexedDB still holds the queue); the network comes back and both
households arrive exactly once. Refusals (409) land in "needs attention" with the hub's message;
a hub error (5xx) keeps the household queued; an ended session asks to log in again and loses
nothing.

The tests take the hub from the ``openrosa_hub`` fixture, parametrised: ``fake`` is the fake
OpenRosa server of ``tests.support.fake_openrosa`` (the real ``/collect`` blueprint plus
in-memory OpenRosa endpoints, a small form); ``real`` is the whole hub of
``tests.support.real_openrosa`` (``create_app`` with the real intake core and the sample
household form, a field worker made by ``srhub users add``, the ingest worker applying what
arrives), where the two households must also be in the registry, once each.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from lxml import etree
from sqlalchemy import func, select

from registry_core.models import Household
from tests.support.fake_openrosa import CollectHub, running_fake_openrosa
from tests.support.real_openrosa import SAMPLE_FORM_ID, RealCollectHub, running_real_hub
from tests.support.xlsform import FORM_ID

CONFLICT = "A different submission with this instanceID exists."
CONSOLE: list[str] = []  # what the page wrote to the console during the current test


@pytest.fixture(params=["fake", "real"])
def openrosa_hub(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CollectHub]:
    """A hub serving /collect and /openrosa over loopback, with one field account."""
    if request.param == "fake":
        with running_fake_openrosa() as hub:
            yield hub
    else:
        with running_real_hub(tmp_path) as real:
            yield real


@pytest.fixture
def page(browser: Any, openrosa_hub: CollectHub) -> Iterator[Any]:
    context = browser.new_context()  # fresh IndexedDB, caches and service workers
    opened = context.new_page()
    opened.set_default_timeout(20_000)
    errors: list[str] = []
    elsewhere: list[str] = []  # requests leaving the hub's origin
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.on("console", lambda message: CONSOLE.append(message.text))
    own = (openrosa_hub.url + "/", "data:", "blob:")
    context.on("request", lambda r: None if r.url.startswith(own) else elsewhere.append(r.url[:80]))
    CONSOLE.clear()
    try:
        yield opened
    finally:
        context.close()
    assert errors == [], f"the page raised: {errors}"
    # Nothing is fetched from elsewhere, nor tried and refused by the page's CSP (enketo's
    # default map layers would: OpenStreetMap tiles and a Google Maps script).
    assert elsewhere == []
    assert not [line for line in CONSOLE if "Content Security Policy" in line]


def open_and_log_in(page: Any, hub: CollectHub) -> None:
    page.goto(f"{hub.url}/collect/")
    page.wait_for_selector("#collect[data-ready=true]")
    assert page.locator("#login").is_visible()
    log_in(page, hub)
    page.wait_for_selector("#form-container form.or")
    page.wait_for_selector("#collect[data-offline-ready=true]")


def log_in(page: Any, hub: CollectHub) -> None:
    page.fill("#login-username", hub.username)
    page.fill("#login-password", hub.password)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#login", state="hidden")


@dataclass(frozen=True)
class SmallForm:
    """The fake's form (tests/support/xlsform.py): head's name, household size, area."""

    head_field: str = 'input[name="/data/head_name"]'
    size_field: str = 'input[name="/data/household_size"]'

    def fill(self, page: Any, head: str, size: str, area: str) -> None:
        page.check(f'input[name="/data/admin_area"][value="{area}"]')
        page.fill(self.head_field, head)
        page.fill(self.size_field, size)

    def head_of(self, root: etree._Element) -> str | None:
        return root.findtext("head_name")


@dataclass(frozen=True)
class SampleForm:
    """The hub's sample household form (hub/intake/sample_forms): area code (regex()
    constraint), geopoint, consent, the repeat of members (a date of birth with a today()
    constraint) filled with the head and one child, the dwelling group (rooms 1-30)."""

    head_field: str = 'input[name="/data/members/given_name"]'
    size_field: str = 'input[name="/data/dwelling/rooms"]'

    def fill(self, page: Any, head: str, size: str, area: str) -> None:
        given, _, family = head.partition(" ")
        page.fill('input[name="/data/admin_area_code"]', area)
        page.fill('input[name="lat"]', "33.6844")
        page.fill('input[name="long"]', "73.0479")
        page.check('input[name="/data/consent_national_id_check"][value="yes"]')
        people = [(given, family, "female", "1980-04-02", "head")]
        people.append(("Zara", family, "female", "2012-01-01", "child"))
        for index, (first, last, sex, born, relationship) in enumerate(people):
            repeats = page.locator(".or-repeat")
            if repeats.count() <= index:  # the first member is there; add the others
                page.click(".add-repeat-btn")
            member = repeats.nth(index)
            member.locator('input[name="/data/members/given_name"]').fill(first)
            member.locator('input[name="/data/members/family_name"]').fill(last)
            member.locator(f'input[data-name="/data/members/sex"][value="{sex}"]').check()
            member.locator('input[placeholder="yyyy-mm-dd"]').fill(born)
            member.locator(
                f'input[data-name="/data/members/relationship"][value="{relationship}"]'
            ).check()
        page.check('input[name="/data/dwelling/roof_material"][value="metal"]')
        page.fill(self.size_field, size)

    def head_of(self, root: etree._Element) -> str | None:
        head = root.find("members")
        if head is None:
            return None
        return f"{head.findtext('given_name')} {head.findtext('family_name')}"


FORMS: dict[str, SmallForm | SampleForm] = {FORM_ID: SmallForm(), SAMPLE_FORM_ID: SampleForm()}


def fill_household(page: Any, hub: CollectHub, head: str, size: str, area: str = "PK-01") -> None:
    FORMS[hub.form_id].fill(page, head, size, area)
    # leave the last field first: enketo validates it on blur and may show a message that
    # moves the button between a click's press and release
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.click("#submit-household")


def wait_count(page: Any, which: str, value: int) -> None:
    page.wait_for_function(
        "([id, value]) => document.getElementById(id).textContent === String(value)",
        arg=[f"count-{which}", value],
    )


def counts(page: Any) -> tuple[str, str, str]:
    return tuple(  # type: ignore[return-value]
        page.locator(f"#count-{name}").inner_text() for name in ("queued", "sent", "attention")
    )


def test_two_households_filled_offline_arrive_exactly_once(
    page: Any, openrosa_hub: CollectHub
) -> None:
    hub = openrosa_hub
    form = FORMS[hub.form_id]
    open_and_log_in(page, hub)

    # enketo validates before anything is queued: a size of 0 breaks the form's constraint
    fill_household(page, hub, "Invalid Size", "0")
    page.wait_for_selector("#form-message[data-kind=error]")
    assert counts(page) == ("0", "0", "0")
    page.fill(form.size_field, "")

    page.context.set_offline(True)
    page.wait_for_selector("#net-status[data-online=false]")
    seen_before_offline = len(hub.requests_seen())

    fill_household(page, hub, "Amina Khan", "5")
    wait_count(page, "queued", 1)
    # the form was reset for the next household: empty, with a new instanceID
    assert page.input_value(form.head_field) == ""
    fill_household(page, hub, "Bilal Ahmed", "3", "PK-02")
    wait_count(page, "queued", 2)

    page.reload()  # still offline: the service worker serves the shell and the bundle
    page.wait_for_selector("#collect[data-ready=true]")
    page.wait_for_selector("#form-container form.or")  # the form comes from IndexedDB
    assert counts(page) == ("2", "0", "0")
    assert page.locator("#login").is_hidden()
    assert hub.requests_seen()[seen_before_offline:] == []  # nothing reached the hub
    assert hub.posts() == []

    page.context.set_offline(False)
    wait_count(page, "sent", 2)
    assert counts(page) == ("0", "2", "0")

    stored = hub.stored_instance_ids()
    assert len(stored) == 2 and all(i.startswith("uuid:") for i in stored)
    posts = hub.posts()
    assert sorted(p.instance_id for p in posts if p.instance_id) == stored  # once each
    assert [p.status for p in posts] == [201, 201]
    heads = set()
    for instance_id in stored:
        root = etree.fromstring(hub.stored_xml(instance_id))
        assert root.get("id") == hub.form_id and root.get("version") == hub.form_version
        heads.add(form.head_of(root))
    assert heads == {"Amina Khan", "Bilal Ahmed"}
    if isinstance(hub, RealCollectHub):
        _assert_registered_once(hub, stored)
        assert hub.protocol_slips() == []
        assert "POST /openrosa/session" in hub.requests_seen()

    # no answer reached the console (the page logs only counts and error names)
    assert not [line for line in CONSOLE if "Amina" in line or "Bilal" in line]

    # a later pass sends nothing again
    page.click("#sync-now")
    page.wait_for_timeout(500)
    assert len(hub.posts()) == 2


def _assert_registered_once(hub: RealCollectHub, instance_ids: list[str]) -> None:
    """Each instance applied by the ingest worker into a household of its own, with both
    members of the repeat; the registry holds exactly those households."""
    rows = hub.applied(instance_ids)
    assert [r["status"] for r in rows] == ["applied", "applied"], [r["reason"] for r in rows]
    households = {r["household_id"] for r in rows}
    assert len(households) == 2 and None not in households
    areas = set()
    for household_id in households:
        record = hub.runtime.registry.get_household(household_id)
        assert [m["relationship"] for m in record["members"]] == ["head", "child"]
        assert record["location"] == {"lat": 33.6844, "lon": 73.0479}
        areas.add(record["admin_area_code"])
    assert areas == {"PK-01", "PK-02"}
    with hub.runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Household)) == 2


def test_refusal_needs_attention_and_hub_errors_stay_queued(
    page: Any, openrosa_hub: CollectHub
) -> None:
    hub = openrosa_hub
    open_and_log_in(page, hub)

    hub.answer_next_submission(409, CONFLICT)
    fill_household(page, hub, "Chen Wei", "2")
    wait_count(page, "attention", 1)
    assert counts(page) == ("0", "0", "1")
    item = page.locator("#attention-list li")
    assert CONFLICT in item.locator(".message").inner_text()
    assert "409" in item.locator(".message").inner_text()

    hub.answer_next_submission(503, "The hub is busy.")
    fill_household(page, hub, "Dara Okafor", "4")
    page.wait_for_selector("#sync-status[data-kind=warn]")
    assert "503" in page.locator("#sync-status").inner_text()
    assert [p.status for p in hub.posts()] == [409, 503]
    assert counts(page) == ("1", "0", "1")  # still queued, not refused

    page.click("#sync-now")  # forces the retry before its backoff time
    wait_count(page, "sent", 1)
    assert counts(page) == ("0", "1", "1")
    assert [p.status for p in hub.posts()] == [409, 503, 201]

    # the refused one, sent again as it was, is now accepted (the hub holds nothing for it)
    item.locator("button.retry").click()
    wait_count(page, "sent", 2)
    assert counts(page) == ("0", "2", "0")
    assert len(hub.stored_instance_ids()) == 2


def test_an_ended_session_asks_to_log_in_and_keeps_the_queue(
    page: Any, openrosa_hub: CollectHub
) -> None:
    hub = openrosa_hub
    open_and_log_in(page, hub)
    hub.expire_tokens()

    fill_household(page, hub, "Esi Mensah", "6")
    page.wait_for_selector("#login", state="visible")
    assert "log in again" in page.locator("#login-reason").inner_text().lower()
    assert counts(page) == ("1", "0", "0")
    assert [p.status for p in hub.posts()] == []  # refused at the door: nothing stored

    log_in(page, hub)
    wait_count(page, "sent", 1)
    assert counts(page) == ("0", "1", "0")
    assert len(hub.stored_instance_ids()) == 1


def test_form_urls_printed_for_another_origin_are_fetched_from_the_pages_own(
    browser: Any, tmp_path: Path
) -> None:
    """Behind a proxy the hub may print its form URLs with the inner host name; the page
    (whose CSP allows only its own origin) fetches the same path from where it came."""
    with running_real_hub(tmp_path, inner_host="hub.internal:8080") as hub:
        listed = requests.get(
            f"{hub.url}/openrosa/formList",
            headers={"X-OpenRosa-Version": "1.0"},
            auth=(hub.username, hub.password),
            timeout=10,
        )
        assert "<downloadUrl>http://hub.internal:8080/openrosa/forms/" in listed.text
        context = browser.new_context()
        try:
            page = context.new_page()
            page.set_default_timeout(20_000)
            open_and_log_in(page, hub)
        finally:
            context.close()
        assert f"GET /openrosa/forms/{SAMPLE_FORM_ID}/form.xml" in hub.requests_seen()
