"""When the hub starts, carry on the background scans a stopped process left behind.

A duplicate scan (``hub.duplicates.runner``) or a data-quality scan (``hub.quality.scan``)
runs on a thread of the process that started it and saves its progress after every batch. If
that process stops, the scan's row stays ``running`` (or ``queued``) with an old heartbeat.
Without this, it would wait for someone to look at it (or, for data quality, for the retention
round's few batches). ``resume_stalled_scans`` runs where the API app is built
(``hub.api.create_app``: ``srhub run`` and every gunicorn worker), and:

- wakes the app's duplicate scan runner when a scan is queued or stalled: the runner claims it
  with a conditional UPDATE, so of several processes starting at once exactly one runs it;
- claims a stalled data-quality scan the same way (``claim_stalled``) and runs it to its end
  on a thread;
- when a scan is running but its heartbeat is still fresh (the process that ran it was just
  restarted, or another live process runs it), checks again once it would be stale
  (``stale_after`` later, on a daemon timer): a live process keeps the heartbeat fresh and
  keeps the scan; a dead one's is taken over.

Nothing here raises: a database that does not answer yet is logged, and the scans wait for
the next look as before.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)
RECHECK_MARGIN_SECONDS = 1.0


def _later(seconds: float, action: Callable[[], None], name: str) -> threading.Timer:
    timer = threading.Timer(seconds + RECHECK_MARGIN_SECONDS, action)
    timer.name = name
    timer.daemon = True
    timer.start()
    return timer


def resume_duplicate_scan(runner: Any, *, recheck: bool = True) -> str:
    """Wake ``runner`` (a ``ScanRunner``) for a queued or stalled scan: ``resumed``;
    ``waiting`` when one runs with a fresh heartbeat (checked again later); else ``none``."""
    claimable, active = runner.pending()
    if claimable:
        runner.wake()
        return "resumed"
    if not active:
        return "none"
    if recheck:
        _later(
            runner.stale_after,
            lambda: _quietly(lambda: resume_duplicate_scan(runner, recheck=False)),
            "duplicate-scan-recheck",
        )
    return "waiting"


def resume_quality_scan(
    sessions: Any, config: Any, *, stale_after: float | None = None, recheck: bool = True
) -> str:
    """Claim a stalled data-quality scan and run it here: ``resumed``; ``waiting`` when one
    runs with a fresh ``updated_at`` (checked again later); else ``none``."""
    from hub.quality import scan as quality_scan

    stale = quality_scan.STALE_AFTER_SECONDS if stale_after is None else stale_after
    claimed, running = quality_scan.claim_stalled(sessions, stale)
    if claimed is not None:
        log.info("resuming data-quality scan %s", claimed)
        quality_scan.continue_in_background(sessions, config, claimed)
        return "resumed"
    if not running:
        return "none"
    if recheck:
        _later(
            stale,
            lambda: _quietly(
                lambda: resume_quality_scan(sessions, config, stale_after=stale, recheck=False)
            ),
            "quality-scan-recheck",
        )
    return "waiting"


def _quietly(action: Callable[[], Any]) -> None:
    try:
        action()
    except Exception as exc:  # a start must not fail over a scan; the next look resumes it
        log.warning("could not resume a background scan: %s", type(exc).__name__)


def resume_stalled_scans(app: Any, runtime: Any) -> dict[str, str]:
    """Resume both kinds of scan for the app being built (see the module docstring); what was
    done for each (``resumed``, ``waiting``, ``none`` or ``unavailable``)."""
    from hub.api.duplicates import RUNNER_KEY
    from hub.duplicates.runner import ScanRunner, scan_matcher

    done: dict[str, str] = {}
    try:
        # Asked with a plain runner first: the app's own (with the hub's matcher, perhaps a
        # trained model to load) is only made when there is a scan to carry on.
        _claimable, active = ScanRunner(runtime.sessions, runtime.cipher).pending()
        if active:
            runner = app.extensions.setdefault(
                RUNNER_KEY,
                ScanRunner(runtime.sessions, runtime.cipher, matcher=scan_matcher(runtime)),
            )
            done["duplicates"] = resume_duplicate_scan(runner)
        else:
            done["duplicates"] = "none"
    except Exception as exc:
        log.warning("duplicate scans not checked at start: %s", type(exc).__name__)
        done["duplicates"] = "unavailable"
    try:
        done["quality"] = resume_quality_scan(runtime.sessions, runtime.settings.quality)
    except Exception as exc:
        log.warning("data-quality scans not checked at start: %s", type(exc).__name__)
        done["quality"] = "unavailable"
    return done
