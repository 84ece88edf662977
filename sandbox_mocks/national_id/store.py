"""The authority's identity records: the sandbox population as this partner holds it.

Why a separate store: the authority keeps its own copy of each enrolled person, with its own
data-entry noise, its own virtual IDs (VIDs), and the deaths it has been told about. The hub must
cope with those differences, so the mock must not simply serve the generator's truth.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import date

from sandbox_mocks.national_id.config import NationalIdConfig
from sandbox_mocks.population import PopulationIndex, partner_view
from sandbox_mocks.population.ids import check_character

PARTNER = "national_id"


@dataclass(frozen=True)
class IdentityRecord:
    uin: str
    vid: str
    given_name: str
    family_name: str
    birth_date: date
    sex: str  # "male" | "female"
    phone: str | None
    address_line: str
    locality: str
    locality_code: str
    district: str
    region: str
    death_date: date | None

    @property
    def deceased(self) -> bool:
        return self.death_date is not None

    @property
    def full_address(self) -> str:
        return f"{self.address_line}, {self.district}, {self.region}"


def derive_vid(uin: str, seed: int) -> str:
    """A 16-digit virtual ID bound to the UIN: 15 digits from a keyed hash and the check digit
    the sandbox profile gives virtual IDs (Verhoeff)."""
    digest = hmac.new(f"vid:{seed}".encode(), uin.encode(), hashlib.sha256).digest()
    body = str(int.from_bytes(digest[:8], "big") % (9 * 10**14) + 10**14)
    return body + check_character("virtual_id", body)


class IdentityStore:
    """UIN and VID look-ups over the enrolled people of one sandbox."""

    def __init__(self, records: list[IdentityRecord]) -> None:
        self._by_uin = {r.uin: r for r in records}
        self._by_vid = {r.vid: r for r in records}

    @classmethod
    def build(cls, config: NationalIdConfig) -> IdentityStore:
        index = PopulationIndex.build(config.seed, config.people, events_days=config.events_days)
        records = []
        for truth in index.people():
            if not truth.national_id:
                continue  # not enrolled yet: unknown to the authority
            person = partner_view(
                truth, PARTNER, config.seed, config.noise_rate, keep=frozenset({"national_id"})
            )
            household = index.household_of(truth.person_key)
            assert household is not None
            region, district, locality = index.area_chain(household.locality_code)
            records.append(
                IdentityRecord(
                    uin=truth.national_id,
                    vid=derive_vid(truth.national_id, config.seed),
                    given_name=person.given_name,
                    family_name=person.family_name,
                    birth_date=person.birth_date,
                    sex=person.sex,
                    phone=person.phone,
                    address_line=household.address,
                    locality=locality.name,
                    locality_code=locality.code,
                    district=district.name,
                    region=region.name,
                    death_date=truth.death_date,
                )
            )
        return cls(records)

    def __len__(self) -> int:
        return len(self._by_uin)

    def records(self) -> list[IdentityRecord]:
        return list(self._by_uin.values())

    def by_uin(self, uin: str) -> IdentityRecord | None:
        return self._by_uin.get(uin)

    def by_vid(self, vid: str) -> IdentityRecord | None:
        return self._by_vid.get(vid)
