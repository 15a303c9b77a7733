"""Service-level figures of 311 cases: how many are open and overdue, how fast the city
acknowledges and closes them (median and 90th percentile, per service type and per neighborhood),
how often it meets its service level, how satisfied people are, how many closures are contested
and which channels cases arrive by.

The figures are computed in Python over the cases filed in the chosen period (one light row per
case, read in chunks): a few hundred thousand cases take a second or two. The case desk's metrics
page renders them; callers pass the cases a person may see (:func:`engagement.services.desk_cases`).

Definitions
- Time to acknowledge: from filing to the first status after "open", for cases acknowledged.
- Time to close: from filing to closing, for cases closed (a reopened case counts its last closing).
- Median and 90th percentile: linear interpolation between the closest ranks (the "inclusive"
  method of spreadsheets' PERCENTILE.INC and numpy's default).
- Service level met: of the cases whose outcome is known — closed, or still open past their
  expected date — the share closed by their expected date. Cases still open within their
  service level are not counted yet.
- Satisfaction: the mean of survey answers (1–5) and how many answered.
- Contested: cases whose closure was contested at least once, and how many times in all.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from neighborhoods.models import Neighborhood

from .models import Case, ServiceType, SurveyResponse

DEFAULT_PERIOD_DAYS = 90
NO_NEIGHBORHOOD = "No neighborhood (address only)"
_ROW_FIELDS = (
    "id",
    "service_type_id",
    "neighborhood_id",
    "status",
    "channel",
    "created_at",
    "acknowledged_at",
    "closed_at",
    "expected_at",
    "contested_count",
)


def percentile(values: list[float], fraction: float) -> float | None:
    """The ``fraction`` (0–1) percentile of ``values``, interpolating between closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class Spread:
    """How long something took across ``n`` cases."""

    n: int
    median: timedelta | None
    p90: timedelta | None

    @classmethod
    def of(cls, seconds: list[float]) -> Spread:
        if not seconds:
            return cls(0, None, None)
        return cls(
            len(seconds),
            timedelta(seconds=statistics.median(seconds)),
            timedelta(seconds=percentile(seconds, 0.9)),
        )


@dataclass
class Group:
    """The figures of one service type, one neighborhood, or all cases of the period."""

    label: str
    filed: int = 0
    open: int = 0
    overdue: int = 0
    sla_met: int = 0
    sla_known: int = 0
    contested_cases: int = 0
    contested_closures: int = 0
    ratings: list[int] = field(default_factory=list)
    fixed_answers: list[bool] = field(default_factory=list)
    acknowledge_seconds: list[float] = field(default_factory=list, repr=False)
    close_seconds: list[float] = field(default_factory=list, repr=False)

    @property
    def acknowledge(self) -> Spread:
        return Spread.of(self.acknowledge_seconds)

    @property
    def close(self) -> Spread:
        return Spread.of(self.close_seconds)

    @property
    def sla_percent(self) -> float | None:
        return 100 * self.sla_met / self.sla_known if self.sla_known else None

    @property
    def satisfaction(self) -> float | None:
        return statistics.fmean(self.ratings) if self.ratings else None

    @property
    def satisfaction_n(self) -> int:
        return len(self.ratings)

    @property
    def fixed_percent(self) -> float | None:
        if not self.fixed_answers:
            return None
        return 100 * sum(self.fixed_answers) / len(self.fixed_answers)

    def add(self, row: tuple, now: datetime) -> None:
        (_, _, _, status, _, created, acknowledged, closed, expected, contested) = row
        self.filed += 1
        is_open = status != Case.Status.CLOSED
        if is_open:
            self.open += 1
        if acknowledged is not None:
            self.acknowledge_seconds.append(max(0.0, (acknowledged - created).total_seconds()))
        if closed is not None and not is_open:
            self.close_seconds.append(max(0.0, (closed - created).total_seconds()))
        if expected is not None:
            if not is_open and closed is not None:
                self.sla_known += 1
                self.sla_met += closed <= expected
            elif is_open and expected < now:
                self.sla_known += 1
                self.overdue += 1
        if contested:
            self.contested_cases += 1
            self.contested_closures += contested


@dataclass(frozen=True)
class ChannelShare:
    channel: str
    label: str
    count: int
    percent: float


@dataclass
class Report:
    start: datetime
    end: datetime
    open_now: int
    overdue_now: int
    total: Group
    by_type: list[Group]
    by_neighborhood: list[Group]
    channels: list[ChannelShare]


def default_period(now: datetime | None = None) -> tuple[datetime, datetime]:
    now = now or timezone.now()
    return now - timedelta(days=DEFAULT_PERIOD_DAYS), now


def case_metrics(
    cases: QuerySet[Case], *, start: datetime, end: datetime, now: datetime | None = None
) -> Report:
    """The figures of ``cases`` filed in ``[start, end)``; open and overdue "now" counts cover
    every case of ``cases``, whenever filed. Five queries, however many cases."""
    now = now or timezone.now()
    current = cases.order_by().aggregate(
        open=Count("pk", filter=~Q(status=Case.Status.CLOSED)),
        overdue=Count("pk", filter=~Q(status=Case.Status.CLOSED) & Q(expected_at__lt=now)),
    )
    period = cases.filter(created_at__gte=start, created_at__lt=end).order_by()
    total = Group("All cases")
    by_type: dict[int, Group] = {}
    by_place: dict[int | None, Group] = {}
    channels: Counter[str] = Counter()
    case_groups: dict[int, tuple[Group, Group]] = {}
    for row in period.values_list(*_ROW_FIELDS).iterator(chunk_size=5000):
        case_id, type_id, place_id, channel = row[0], row[1], row[2], row[4]
        kind = by_type.setdefault(type_id, Group(""))
        place = by_place.setdefault(place_id, Group(""))
        for group in (total, kind, place):
            group.add(row, now)
        channels[channel] += 1
        case_groups[case_id] = (kind, place)
    answers = SurveyResponse.objects.filter(case__in=period.values("pk")).values_list(
        "case_id", "satisfaction", "fixed"
    )
    for case_id, rating, fixed in answers.iterator(chunk_size=5000):
        groups = case_groups.get(case_id)
        if groups is None:
            continue
        for group in (total, *groups):
            group.ratings.append(rating)
            group.fixed_answers.append(fixed)
    _label(by_type, ServiceType.objects.filter(pk__in=list(by_type)).values_list("pk", "name"))
    _label(
        by_place,
        Neighborhood.objects.filter(pk__in=[pk for pk in by_place if pk]).values_list("pk", "name"),
    )
    if None in by_place:
        by_place[None].label = NO_NEIGHBORHOOD
    labels = dict(Case.Channel.choices)
    order = list(labels)
    shares = [
        ChannelShare(channel, labels.get(channel, channel), count, 100 * count / total.filed)
        for channel, count in sorted(
            channels.items(), key=lambda item: (-item[1], order.index(item[0]))
        )
    ]
    return Report(
        start=start,
        end=end,
        open_now=current["open"],
        overdue_now=current["overdue"],
        total=total,
        by_type=_ordered(by_type.values()),
        by_neighborhood=_ordered(by_place.values()),
        channels=shares,
    )


def _label(groups: dict, names: Iterable[tuple[int, str]]) -> None:
    for pk, name in names:
        groups[pk].label = name


def _ordered(groups: Iterable[Group]) -> list[Group]:
    return sorted(groups, key=lambda group: (-group.filed, group.label))


def human_duration(value: timedelta | None) -> str:
    """``45 min``, ``5.5 h``, ``3.2 days``: short enough for a table cell."""
    if value is None:
        return "—"
    minutes = value.total_seconds() / 60
    if minutes < 90:
        return f"{minutes:.0f} min"
    hours = minutes / 60
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} days"
