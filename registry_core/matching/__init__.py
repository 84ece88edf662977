"""Person record matching: normalise, block, compare, score, decide.

Pure Python with no I/O: callers pass records in and get pairs or decisions out. The batch path
(``srhub dedup``) uses :meth:`Matcher.pairs`; the ingest path fetches a candidate block from the
registry by :func:`blocking_keys` and asks :meth:`Matcher.match_one` for a decision.

Two matchers offer that: :class:`Matcher` (fixed priors and rules, for a registry too small to
learn from) and :class:`TrainedMatcher` (a Fellegi-Sunter model learnt from the records, see
:mod:`.training`, exportable to splink, see :mod:`.splink_format`). docs/matching.md compares
them.
"""

from registry_core.matching.blocking import blocking_keys, candidate_pairs
from registry_core.matching.canonical import person_from_canonical
from registry_core.matching.compare import Comparison, compare
from registry_core.matching.matcher import (
    MatchDecision,
    Matcher,
    MatcherConfig,
    Outcome,
    PersonMatcher,
    ScoredPair,
)
from registry_core.matching.normalise import (
    FIELDS,
    FieldError,
    PersonRecord,
    make_person,
    person_from_mapping,
)
from registry_core.matching.scoring import Model
from registry_core.matching.trained import TrainedModel
from registry_core.matching.trained_matcher import TrainedMatcher
from registry_core.matching.training import TrainingOptions, train

__all__ = [
    "FIELDS",
    "Comparison",
    "FieldError",
    "MatchDecision",
    "Matcher",
    "MatcherConfig",
    "Model",
    "Outcome",
    "PersonMatcher",
    "PersonRecord",
    "ScoredPair",
    "TrainedMatcher",
    "TrainedModel",
    "TrainingOptions",
    "blocking_keys",
    "candidate_pairs",
    "compare",
    "make_person",
    "person_from_canonical",
    "person_from_mapping",
    "train",
]
