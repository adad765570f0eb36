"""Where a degradation sits: the one scope rule, shared by `analyze` and incident triage.

Input: the feature's slices (one row per value of every split dimension) since the onset, each
with its request count and its *excess* (how much worse it made the metric, in metric units x
requests, bad direction positive). Output: `single_user`, `partial` or `total`.

1. Symptoms are not causes: a value that is missing or set *because* the request failed
   (no `response_model` on an error, a value seen almost only on failed requests) is never
   offered as a slice (`is_symptom`).
2. Users first: when one user carries at least `coverage` of the excess, the scope is
   `single_user`, however many of the requests are theirs (a client retrying in a loop can
   be most of an hour's traffic).
3. Otherwise the smallest slice (one dimension, up to three values) carrying at least
   `coverage` of the excess with at most `max_share` of the requests is `partial`; the same
   requests named by another dimension (variant = canary is model = X) are listed with it.
4. Otherwise `total`.
"""

from __future__ import annotations

from dataclasses import dataclass

USER_DIMENSION = "user_id"
# Dimensions the provider or the outcome sets, after the request was made.
RESPONSE_DIMENSIONS = frozenset({"response_model"})
DIMENSION_ORDER = ("variant", "prompt_version", "response_model", "model", "region", "segment", "user_id")
MISSING = "(none)"
SYMPTOM_FAILED_SHARE = 0.9  # a value seen on failed requests this often is a symptom
MAX_SLICE_VALUES = 3
SAME_SHARE = 0.005  # two slices with request shares this close ...
SAME_COVERAGE = 0.05  # ... and coverages this close hold the same requests


@dataclass(frozen=True)
class SliceExcess:
    dimension: str
    value: str
    requests: int  # since the onset
    excess: float  # bad direction positive
    failed_share: float = 0.0  # share of the value's requests that failed


@dataclass(frozen=True)
class ScopeChoice:
    kind: str  # total | partial | single_user
    picks: tuple[SliceExcess, ...] = ()  # the scope's values (one dimension)
    same_requests: tuple[SliceExcess, ...] = ()  # the same requests named by another dimension
    coverage: float = 1.0  # share of the excess the picks carry

    @property
    def dimension(self) -> str | None:
        return self.picks[0].dimension if self.picks else None


def is_symptom(s: SliceExcess) -> bool:
    """A value explained by the failure itself, not a cause of it."""
    if s.dimension == USER_DIMENSION:
        return False  # who sent a request is known before it fails
    response_side = s.dimension in RESPONSE_DIMENSIONS or s.value == MISSING
    return response_side and s.failed_share >= SYMPTOM_FAILED_SHARE


def choose_scope(
    rows: list[SliceExcess], total_excess: float, total_requests: int, coverage: float, max_share: float
) -> ScopeChoice:
    """The scope of a degradation whose excess is `total_excess` over `total_requests`."""
    if total_excess <= 0 or total_requests <= 0:
        return ScopeChoice("total")
    rows = [r for r in rows if not is_symptom(r)]
    users = sorted((r for r in rows if r.dimension == USER_DIMENSION), key=lambda r: -r.excess)
    if users and users[0].excess / total_excess >= coverage:
        return ScopeChoice("single_user", (users[0],), coverage=min(users[0].excess / total_excess, 1.0))
    options = []
    for rank, dim in enumerate(DIMENSION_ORDER):
        part = sorted((r for r in rows if r.dimension == dim and r.excess > 0), key=lambda r: -r.excess)
        chosen, covered, share = [], 0.0, 0.0
        for r in part[:MAX_SLICE_VALUES]:
            chosen.append(r)
            covered += r.excess / total_excess
            share += r.requests / total_requests
            if covered >= coverage:
                break
        if chosen and covered >= coverage and share <= max_share:
            options.append((round(share, 3), rank, chosen, covered))
    if not options:
        return ScopeChoice("total")
    options.sort(key=lambda o: (o[0], o[1]))
    share0, _, chosen0, covered0 = options[0]
    same = [
        r
        for share, _, chosen, covered in options[1:]
        if chosen[0].dimension != USER_DIMENSION
        and abs(share - share0) <= SAME_SHARE
        and abs(covered - covered0) <= SAME_COVERAGE
        for r in chosen
    ]
    kind = "single_user" if chosen0[0].dimension == USER_DIMENSION and len(chosen0) == 1 else "partial"
    return ScopeChoice(kind, tuple(chosen0), tuple(same), min(covered0, 1.0))
