"""A simulated field team: enumerators who register households door to door with a device,
partly offline, and send their work over OpenRosa.

What it does, so the dashboard shows field work within a minute of ``srhub run``:

- each enumerator lists and downloads the forms, like ODK Collect on a new phone;
- surveys the households given to it in batches: the first online (each form sent when
  saved), the next ones offline (held, then sent in one burst when "back in coverage");
- after an offline burst, one submission is sent again, as a phone does when the network
  dropped before the server's answer arrived: the server must answer it as already received;
- revisits: two enumerators are sent to the same registered household with the same version
  of it; the first update lands, the second must come back as a conflict for review.

Every outcome is counted (``TeamReport``); nothing here knows the hub's internals.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date

from sandbox_mocks.field_team.answers import household_answers
from sandbox_mocks.field_team.openrosa import OpenRosaClient, OpenRosaError, SubmitResult
from sandbox_mocks.field_team.xform import FormTemplate
from sandbox_mocks.population.model import Household

log = logging.getLogger(__name__)

FORM_ID = "household_registration"


@dataclass(frozen=True)
class Enumerator:
    username: str
    password: str
    households: Sequence[Household]


@dataclass(frozen=True)
class Revisit:
    """A registered household a supervisor sends enumerators back to."""

    household: Household
    household_id: str
    version: int


@dataclass
class TeamReport:
    sent: int = 0
    stored: int = 0  # 201
    already_received: int = 0  # 202: a re-sent instance
    refused: dict[str, int] = field(default_factory=dict)  # status -> count
    messages: list[str] = field(default_factory=list)  # refusal messages, for the log
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, result: SubmitResult) -> None:
        with self._lock:
            self._add(result)

    def _add(self, result: SubmitResult) -> None:
        self.sent += 1
        if result.status == 201:
            self.stored += 1
        elif result.status == 202:
            self.already_received += 1
        else:
            key = str(result.status)
            self.refused[key] = self.refused.get(key, 0) + 1
            self.messages.append(f"{result.status}: {result.message}"[:300])


def no_revisits() -> Sequence[Revisit]:
    return ()


@dataclass
class FieldTeam:
    server_url: str  # …/openrosa
    enumerators: Sequence[Enumerator]
    # Called while the surveys go on: the households to revisit (it may wait until the
    # registry holds them).
    revisits: Callable[[], Sequence[Revisit]] = no_revisits
    as_of: date = date(2025, 1, 1)
    batch_size: int = 5
    offline_seconds: float = 3.0
    seed: int = 11
    sleep: Callable[[float], None] = time.sleep
    report: TeamReport = field(default_factory=TeamReport)

    def run(self) -> TeamReport:
        """Every enumerator works at the same time (a thread each); the revisits go on beside
        the surveys, from phones of their own, as soon as a household to revisit exists (a
        slow survey must not hold the conflict back)."""
        devices = [self._device(e) for e in self.enumerators]
        revisiting = threading.Thread(target=self._revisits, name="sandbox-revisits", daemon=True)
        revisiting.start()
        workers = [
            threading.Thread(
                target=self._survey,
                args=(client, template, enumerator, random.Random(self.seed + number)),
                name=f"sandbox-enumerator-{number}",
                daemon=True,
            )
            for number, ((client, template), enumerator) in enumerate(
                zip(devices, self.enumerators, strict=True)
            )
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        revisiting.join()
        log.info(
            "sandbox field team: %d sent, %d stored, %d already received, refused %s",
            self.report.sent,
            self.report.stored,
            self.report.already_received,
            self.report.refused or "none",
        )
        return self.report

    def _device(self, enumerator: Enumerator) -> tuple[OpenRosaClient, FormTemplate]:
        client = OpenRosaClient(self.server_url, enumerator.username, enumerator.password)
        listed = [f for f in client.form_list() if f.form_id == FORM_ID]
        if not listed:
            raise OpenRosaError(f"the server lists no form {FORM_ID!r}")
        return client, FormTemplate.from_xform(client.download(listed[0]))

    def _survey(
        self,
        client: OpenRosaClient,
        template: FormTemplate,
        enumerator: Enumerator,
        rng: random.Random,
    ) -> None:
        households = list(enumerator.households)
        batches = [
            households[i : i + self.batch_size] for i in range(0, len(households), self.batch_size)
        ]
        for number, batch in enumerate(batches):
            instances = [
                template.fill(household_answers(h, as_of=self.as_of, rng=rng)) for h in batch
            ]
            if number == 0:  # online: each form goes when it is saved
                for instance in instances:
                    self.report.add(client.submit(instance))
                continue
            self.sleep(self.offline_seconds)  # out of coverage: the forms wait on the phone
            for instance in instances:
                self.report.add(client.submit(instance))
            if instances:  # the answer to one was lost on the way: the phone sends it again
                self.report.add(client.submit(instances[0]))

    def _revisits(self) -> None:
        """Find the households to revisit and visit them; a failure is logged, never raised
        (the surveys go on)."""
        try:
            revisits = self.revisits()
            if revisits and self.enumerators:
                devices = [self._device(e) for e in self.enumerators]
                self._revisit(devices, revisits, random.Random(self.seed))
        except Exception:
            log.exception("sandbox field team: the revisit failed")

    def _revisit(
        self,
        devices: Sequence[tuple[OpenRosaClient, FormTemplate]],
        revisits: Sequence[Revisit],
        rng: random.Random,
    ) -> None:
        visitors = (list(devices) * 2)[:2]  # two visits based on the same version
        for revisit in revisits:
            for number, (client, template) in enumerate(visitors, start=1):
                answers = household_answers(
                    revisit.household,
                    as_of=self.as_of,
                    rng=rng,
                    household_id=revisit.household_id,
                    base_version=revisit.version,
                )
                # A revisit corrects the household's details; its members are already known.
                answers["members"] = []
                answers["address"] = f"{revisit.household.address} (directions, visit {number})"
                self.report.add(client.submit(template.fill(answers)))


def run_in_background(team: FieldTeam) -> threading.Thread:
    """Run ``team`` in a daemon thread; a failure is logged, never raised into the host."""

    def work() -> None:
        try:
            team.run()
        except Exception:
            log.exception("sandbox field team stopped")

    thread = threading.Thread(target=work, name="sandbox-field-team", daemon=True)
    thread.start()
    return thread
