"""The duplicates pages' server-side rules (both databases): a decision needs the CSRF token
and a reason, a refused merge is shown and audited, nothing changes in the registry."""

from __future__ import annotations

from pathlib import Path

from hub.duplicates.runner import ScanRunner
from registry_core.service import Source
from tests.integration.test_dashboard import add_user, csrf, login_session, running_dashboard


def _head(registry, source: str, area: str, nid: str) -> str:
    record = registry.register_household(
        {
            "admin_area_code": area,
            "members": [
                {
                    "given_name": "Akinyi",
                    "family_name": "Odhiambo",
                    "birth_date": "1970-01-01",
                    "sex": "female",
                    "relationship": "head",
                    "identifiers": [{"system": "national_id", "value": nid}],
                }
            ],
        },
        Source(source),
    ).record
    return str(record["members"][0]["id"])


def test_decisions_need_csrf_and_a_reason_and_unsafe_merges_are_refused(
    db_url: str, tmp_path: Path
) -> None:
    with running_dashboard(db_url, tmp_path) as hub:
        registry = hub.runtime.registry
        registry.ensure_identifier_systems()
        first = _head(registry, "program_a", "KE-1", "5551234567")
        second = _head(registry, "program_b", "KE-2", "5557654321")
        runner = ScanRunner(hub.runtime.sessions, hub.runtime.cipher)
        runner.request_scan("test", start=False)
        runner.run_pending()
        [review] = registry.list_reviews(kind="duplicate")[0]
        add_user(hub.settings, "officer")
        browser = login_session(hub, "officer")
        page = browser.get(f"{hub.url}/ui/duplicates/{review['id']}", timeout=10)
        assert page.status_code == 200 and "program_a" in page.text and "program_b" in page.text
        assert "5557654321" not in page.text  # identifiers masked on the page
        assert "force_reason" not in page.text  # registry staff cannot force
        url = f"{hub.url}/ui/duplicates/{review['id']}/merge"

        no_token = browser.post(url, data={"reason": "same woman"}, timeout=10)
        assert no_token.status_code == 400
        token = csrf(page.text)
        no_reason = browser.post(url, data={"csrf_token": token, "reason": " "}, timeout=10)
        assert "say why" in no_reason.text
        unsafe = browser.post(
            url,
            data={"csrf_token": token, "reason": "same woman", "survivor_id": first},
            timeout=10,
        )
        assert "unsafe merge" in unsafe.text and "national_id" in unsafe.text
        forced = browser.post(
            url,
            data={"csrf_token": token, "reason": "same woman", "force_reason": "reissued card"},
            timeout=10,
        )
        assert "only administrators" in forced.text
        assert registry.survivor_of(second) is None and registry.survivor_of(first) is None
        assert browser.get(
            f"{hub.url}/ui/duplicates/{review['id']}/split", timeout=10
        ).status_code in (
            404,
            405,
        )
        outcomes = [(r.action, r.outcome) for r in hub.audit_rows()]
        assert ("duplicate_merge", "refused: no reason") in outcomes
        assert any(a == "duplicate_merge" and "unsafe merge" in o for a, o in outcomes)
        assert ("duplicate_merge", "refused: forcing needs an administrator") in outcomes
