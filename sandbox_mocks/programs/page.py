"""The program MIS's own page (``GET /``): what a program officer would look at.

It lists the registry notifications the MIS received, newest first, by channel, with the event
type, subject, when it arrived and whether its signature verified — so a newcomer who ran
``make run`` sees births and deaths arrive at the program end, not only in the hub. It reads the
same notification log the JSON read-back endpoints serve; it refreshes itself every 5 seconds.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from flask import render_template_string

from sandbox_mocks.programs.notifications import NotificationLog

PAGE_ROWS = 100
EVENT_PREFIX = "org.socialregistry."

_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
<title>Program MIS (sandbox)</title>
<style>
body{font:14px system-ui,sans-serif;margin:1.5rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}
th{background:#f3f3f3}.ok{color:#176617}.bad{color:#a11}.muted{color:#777}
</style></head><body>
<h1>Program MIS <span class="muted">(sandbox)</span></h1>
<h2>Programs</h2>
<table id="programs"><thead><tr><th>Code</th><th>Name</th><th>Active beneficiaries</th></tr>
</thead><tbody>
{% for p in programs %}<tr><td>{{ p.code }}</td><td>{{ p.name }}</td>
<td>{{ p.activeBeneficiaries }}</td></tr>{% endfor %}
</tbody></table>
<h2>Registry notifications received</h2>
<p id="totals">{% for kind, n in totals %}{{ kind }}: <b>{{ n }}</b>
{%- if not loop.last %} · {% endif %}
{% else %}<span class="muted">None yet: the hub delivers births, deaths and verifications here
once it has subscribed this MIS.</span>{% endfor %}</p>
{% if rows %}
<table id="notifications"><thead><tr><th>#</th><th>Received (UTC)</th><th>Channel</th>
<th>Event</th><th>Subject</th><th>Signature</th></tr></thead><tbody>
{% for r in rows %}<tr><td>{{ r.seq }}</td><td>{{ r.received_at }}</td><td>{{ r.channel }}</td>
<td class="event">{{ r.event }}</td><td>{{ r.subject }}</td>
<td class="{{ 'ok' if r.verified else ('bad' if r.verified is false else 'muted') }}">
{{ 'verified' if r.verified else ('not verified' if r.verified is false else 'n/a') }}</td></tr>
{% endfor %}</tbody></table>{% endif %}
</body></html>
"""


def _event_of(entry: dict[str, Any]) -> tuple[str, str]:
    """(event type without the registry prefix, subject) of a logged notification."""
    body = entry.get("json")
    if isinstance(body, dict) and isinstance(body.get("type"), str):
        return body["type"].removeprefix(EVENT_PREFIX), str(body.get("subject") or "")
    if isinstance(body, dict) and isinstance(body.get("header"), dict):
        return f"dci {body['header'].get('action', '?')}", ""
    return "(not a registry event)", ""


def _verified(entry: dict[str, Any]) -> bool | None:
    signature = entry.get("signature")
    if isinstance(signature, dict) and "verified" in signature:
        return bool(signature["verified"])
    return None  # AMQP messages are not signed: the broker's credentials stand for the sender


def render_page(log: NotificationLog, programs: list[dict[str, Any]]) -> str:
    items = log.query()
    totals: Counter[str] = Counter()
    rows = []
    for entry in items:
        event, subject = _event_of(entry)
        totals[event] += 1
        rows.append(
            {
                "seq": entry["seq"],
                "received_at": entry["received_at"][:19].replace("T", " "),
                "channel": entry["channel"],
                "event": event,
                "subject": subject,
                "verified": _verified(entry),
            }
        )
    rows.reverse()
    return render_template_string(
        _TEMPLATE,
        programs=programs,
        totals=sorted(totals.items()),
        rows=rows[:PAGE_ROWS],
    )
