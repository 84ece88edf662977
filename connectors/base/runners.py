"""Running connectors: scheduled pulls that resume from checkpoints, and drop-folder watching.

The order inside a pull is the whole point: fetch a page, publish every raw record of it, and
only then save the checkpoint that follows it. A crash anywhere before the save means the page
is fetched and published again on restart (at least once; the stable message id lets the
ingest side drop the copy); a crash can never move the checkpoint past a record that was not
published. A partner failure leaves the checkpoint where it was; the next run resumes there.

Runners catch everything a run can raise, record it in the connector's status and carry on at
the next interval: a down partner or a broken file never stops the thread.
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass
from typing import Any

from connectors.base.bulk import BulkLoadUnavailable
from connectors.base.checkpoints import DEFAULT_STREAM
from connectors.base.contract import FileConnector, PullConnector
from connectors.base.errors import (
    FileRejected,
    NotAttempted,
    PartnerError,
    PublishFailed,
    TransientPartnerError,
    safe_reason,
)
from connectors.base.filedrop import DropFolder, ReadyFile

log = logging.getLogger(__name__)


@dataclass
class RunOutcome:
    """What one run did, for logs, tests and the CLI."""

    pages: int = 0
    published: int = 0
    checkpoint: Any = None
    error: str | None = None
    skipped: str | None = None  # "paused"


class _Scheduled:
    """A daemon thread calling ``run_once`` every ``interval`` seconds (+/- jitter)."""

    def __init__(self, name: str, interval: float, jitter: float, rng: random.Random | None):
        if interval <= 0 or not 0 <= jitter < 1:
            raise ValueError("interval must be positive and jitter a fraction in [0, 1)")
        self.name = name
        self.interval = interval
        self.jitter = jitter
        self._rng = rng or random.Random()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._paused = threading.Event()
        self._run_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def run_once(self) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def next_delay(self) -> float:
        """The wait before the next run: spread so many connectors do not fire in step."""
        return self.interval * (1 + self._rng.uniform(-self.jitter, self.jitter))

    @property
    def paused(self) -> bool:
        return self._paused.is_set()

    def _set_paused(self, paused: bool) -> None:  # overridden to update the status
        if paused:
            self._paused.set()
        else:
            self._paused.clear()

    def pause(self) -> None:
        """Stop running until ``resume``; a run in progress finishes first."""
        self._set_paused(True)

    def resume(self) -> None:
        self._set_paused(False)
        self._wake.set()

    def wake(self) -> None:
        """Run now instead of at the end of the current wait."""
        self._wake.set()

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            if not self.paused:
                try:
                    self.run_once()
                except Exception:  # run_once records its errors; this is a last resort
                    log.exception("%s: unexpected error in a run", self.name)
            self._wake.wait(self.next_delay())
            self._wake.clear()


class PullRunner(_Scheduled):
    """Schedules one pull connector; publishes raw records, then saves the checkpoint."""

    def __init__(
        self,
        connector: PullConnector,
        *,
        interval: float | None = None,
        jitter: float | None = None,
        stream: str = DEFAULT_STREAM,
        max_pages_per_run: int = 100,
        rng: random.Random | None = None,
    ) -> None:
        settings_jitter = connector.settings.get("poll_jitter", 0.1)
        super().__init__(
            f"pull-{connector.instance_name}",
            interval if interval is not None else connector.poll_interval,
            jitter if jitter is not None else float(settings_jitter),
            rng,
        )
        self.connector = connector
        self.context = connector.context
        self.status = connector.status
        self.stream = stream
        self.max_pages_per_run = max_pages_per_run

    def _set_paused(self, paused: bool) -> None:
        super()._set_paused(paused)
        self.status.set_paused(paused)

    def run_once(self) -> RunOutcome:
        """Poll page after page until the partner has nothing more (or the page cap)."""
        outcome = RunOutcome()
        if self.paused:
            outcome.skipped = "paused"
            return outcome
        with self._run_lock:
            name = self.connector.instance_name
            try:
                checkpoint = self.context.checkpoints.load(name, self.stream)
            except Exception as error:
                outcome.error = f"checkpoint not loaded: {type(error).__name__}"
                self.status.record_failure(outcome.error)
                log.exception("%s: loading the checkpoint failed; not polling", name)
                return outcome
            outcome.checkpoint = checkpoint
            self.status.count("polls")
            while outcome.pages < self.max_pages_per_run and not self.paused:
                try:
                    result = self.connector.poll(checkpoint)
                except (PartnerError, NotAttempted) as error:
                    outcome.error = safe_reason(error)
                    self.status.record_failure(error)
                    level = (
                        logging.ERROR
                        if not isinstance(error, TransientPartnerError | NotAttempted)
                        else logging.WARNING
                    )
                    log.log(level, "%s: poll failed: %s", name, outcome.error)
                    break
                except Exception as error:
                    outcome.error = f"connector error: {type(error).__name__}"
                    self.status.record_failure(outcome.error)
                    log.exception("%s: poll raised an unexpected error", name)
                    break
                try:
                    self.context.publish_many(result.records)
                    outcome.published += len(result.records)
                except PublishFailed as error:
                    outcome.error = safe_reason(error)
                    log.warning("%s: %s; checkpoint not advanced", name, outcome.error)
                    break
                try:
                    self.context.checkpoints.save(name, result.next_checkpoint, self.stream)
                except Exception as error:
                    # Published but not saved: the page comes again next run (at least once).
                    outcome.error = f"checkpoint not saved: {type(error).__name__}"
                    self.status.record_failure(outcome.error)
                    log.exception("%s: saving the checkpoint failed", name)
                    break
                self.status.checkpoint_saved()
                checkpoint = outcome.checkpoint = result.next_checkpoint
                outcome.pages += 1
                if not result.more:
                    break
            if outcome.error is None:
                self.status.record_success()
            return outcome


@dataclass
class FileOutcome:
    processed: list[str]
    rejected: list[str]
    duplicates: list[str]
    waiting: list[str]
    error: str | None = None


class FileDropRunner(_Scheduled):
    """Watches a file connector's drop folder and archives each file after handling it."""

    def __init__(
        self,
        connector: FileConnector,
        *,
        drop: DropFolder | None = None,
        interval: float | None = None,
        jitter: float = 0.1,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(
            f"files-{connector.instance_name}",
            interval if interval is not None else connector.poll_interval,
            jitter,
            rng,
        )
        self.connector = connector
        self.status = connector.status
        self.drop = drop or connector.drop_folder()

    def _set_paused(self, paused: bool) -> None:
        super()._set_paused(paused)
        self.status.set_paused(paused)

    def run_once(self) -> FileOutcome:
        outcome = FileOutcome([], [], [], [])
        if self.paused:
            return outcome
        with self._run_lock:
            scan = self.drop.scan()
            outcome.waiting = scan.waiting
            for refusal in scan.refused:
                self.drop.archive_rejected(
                    refusal.path,
                    refusal.reason,
                    companions=refusal.companions,
                    sha256=refusal.sha256,
                )
                self.status.count("files_rejected")
                outcome.rejected.append(refusal.path.name)
            for ready in scan.ready:
                if not self._handle(ready, outcome):
                    break  # publishing is failing: leave the rest for the next run
            return outcome

    def _handle(self, ready: ReadyFile, outcome: FileOutcome) -> bool:
        name = ready.path.name
        earlier = self.drop.duplicate_of(ready)
        if earlier is not None:
            self.drop.archive_rejected(
                ready.path,
                f"duplicate: the same content (SHA-256) was already processed as {earlier}",
                companions=ready.companions,
                sha256=ready.sha256,
            )
            self.status.count("files_duplicate")
            outcome.duplicates.append(name)
            return True
        try:
            report = self.connector.handle_file(ready.path, ready.manifest)
        except FileRejected as refusal:
            self.drop.archive_rejected(
                ready.path, refusal.reason, companions=ready.companions, sha256=ready.sha256
            )
            self.status.count("files_rejected")
            outcome.rejected.append(name)
            return True
        except (PublishFailed, TransientPartnerError, NotAttempted, BulkLoadUnavailable) as error:
            # Records may be half published (or half loaded, up to a committed checkpoint);
            # the file stays and is handled again next run (at least once; a bulk load
            # continues after its checkpoint). Nothing is archived, nothing remembered as seen.
            outcome.error = safe_reason(error)
            self.status.record_failure(error)
            log.warning("%s: %s; %s left in place", self.connector.instance_name, error, name)
            return False
        except Exception as error:
            reason = f"the connector failed on this file ({type(error).__name__}); see hub logs"
            log.exception("%s: handling %s failed", self.connector.instance_name, name)
            self.drop.archive_rejected(
                ready.path, reason, companions=ready.companions, sha256=ready.sha256
            )
            self.status.record_failure(reason)
            self.status.count("files_rejected")
            outcome.rejected.append(name)
            return True
        self.drop.archive_processed(ready, report.as_dict())
        self.status.count("files_processed")
        self.status.count("rows_rejected", len(report.rejected))
        self.status.record_success()
        outcome.processed.append(name)
        return True
