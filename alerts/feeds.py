"""Alerts for other systems: Atom feeds, a GeoJSON FeatureCollection and CAP 1.2 messages.

All are public and read-only. Every list is built with a fixed number of queries, however many
alerts there are.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from xml.etree import ElementTree as ET

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from django.utils.feedgenerator import Atom1Feed, rfc3339_date
from django.views.decorators.http import require_GET

from neighborhoods.models import Neighborhood

from . import cap, services
from .conf import app_settings
from .models import Alert, AlertCategory, AlertRevision, Severity

# Most entries in one Atom feed; the GeoJSON has no limit (active alerts are few).
FEED_LIMIT = 200
GEORSS_NS = "http://www.georss.org/georss"
GEOJSON_CONTENT_TYPE = "application/geo+json"


# Querysets ------------------------------------------------------------------------------------


def feed_alerts(now: datetime | None = None) -> QuerySet[Alert]:
    """Active alerts, plus retracted official notices until they expire (marked as retracted)."""
    now = now or timezone.now()
    return (
        Alert.objects.filter(starts_at__lte=now)
        .filter(
            Q(status=Alert.Status.ACTIVE)
            | Q(status=Alert.Status.RETRACTED, kind=Alert.Kind.OFFICIAL)
        )
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .select_related("category", "department")
        .order_by("-starts_at", "-id")
    )


def cap_index_alerts(now: datetime | None = None) -> QuerySet[Alert]:
    """Official notices whose current CAP message is still in force (Cancels until expiry)."""
    now = now or timezone.now()
    return (
        Alert.objects.filter(kind=Alert.Kind.OFFICIAL, starts_at__lte=now)
        .filter(status__in=[Alert.Status.ACTIVE, Alert.Status.RETRACTED, Alert.Status.RESOLVED])
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .select_related("category", "department")
        .order_by("-starts_at", "-id")
    )


def _revision_times(alerts: Iterable[Alert]) -> dict[int, dict[int, datetime]]:
    """Version → snapshot time, per alert, in one query."""
    times: dict[int, dict[int, datetime]] = {a.pk: {} for a in alerts}
    rows = AlertRevision.objects.filter(alert_id__in=list(times)).values_list(
        "alert_id", "version", "created_at"
    )
    for alert_id, version, created_at in rows:
        times[alert_id][version] = created_at
    return times


def _neighborhood_names(alerts: Iterable[Alert]) -> dict[int, list[str]]:
    through = Alert.neighborhoods.through
    names: dict[int, list[str]] = {a.pk: [] for a in alerts}
    rows = through.objects.filter(alert_id__in=list(names)).values_list(
        "alert_id", "neighborhood__name"
    )
    for alert_id, name in rows:
        names[alert_id].append(name)
    return {pk: sorted(values) for pk, values in names.items()}


# Atom -----------------------------------------------------------------------------------------


class AlertAtomFeed(Atom1Feed):
    """Atom with HTML ``<content>``, categories with a scheme and label, and GeoRSS shapes."""

    def root_attributes(self) -> dict:
        attrs = super().root_attributes()
        attrs["xmlns:georss"] = GEORSS_NS
        if self.feed.get("cap"):
            attrs["xmlns:cap"] = cap.CAP_NS
        return attrs

    def add_item_elements(self, handler, item) -> None:
        handler.addQuickElement("title", item["title"])
        alternate = {"rel": "alternate", "href": item["link"]}
        if item.get("link_type"):
            alternate["type"] = item["link_type"]
        handler.addQuickElement("link", "", alternate)
        for link in item.get("extra_links", ()):
            handler.addQuickElement("link", "", link)
        if item["pubdate"] is not None:
            handler.addQuickElement("published", rfc3339_date(item["pubdate"]))
        if item["updateddate"] is not None:
            handler.addQuickElement("updated", rfc3339_date(item["updateddate"]))
        if item["author_name"] is not None:
            handler.startElement("author", {})
            handler.addQuickElement("name", item["author_name"])
            handler.endElement("author")
        handler.addQuickElement("id", item["unique_id"])
        if item["description"] is not None:
            handler.addQuickElement("summary", item["description"])
        if item.get("content_html") is not None:
            handler.addQuickElement("content", item["content_html"], {"type": "html"})
        for term, label, scheme in item.get("labelled_categories", ()):
            handler.addQuickElement(
                "category", "", {"term": term, "label": label, "scheme": scheme}
            )
        for name, value in item.get("cap_elements", ()):
            handler.addQuickElement(f"cap:{name}", value)
        for name, value in item.get("georss", ()):
            handler.addQuickElement(f"georss:{name}", value)


def georss(alert: Alert) -> list[tuple[str, str]]:
    """GeoRSS Simple for an alert: a point with its radius, a polygon, or a box around parts."""
    if alert.lat is not None and alert.lon is not None:
        shapes = [("point", f"{alert.lat:.6f} {alert.lon:.6f}")]
        if alert.radius_m:
            shapes.append(("radius", str(alert.radius_m)))
        return shapes
    if alert.area.get("type") == "Polygon":
        ring = alert.area["coordinates"][0]
        return [("polygon", " ".join(f"{lat:.6f} {lon:.6f}" for lon, lat, *_ in ring))]
    return [
        ("box", f"{alert.min_lat:.6f} {alert.min_lon:.6f} {alert.max_lat:.6f} {alert.max_lon:.6f}")
    ]


def _title(alert: Alert) -> str:
    return f"[Retracted] {alert.title}" if alert.status == Alert.Status.RETRACTED else alert.title


def _summary(alert: Alert) -> str:
    parts = [alert.provenance, Severity(alert.severity).label, alert.category.name]
    summary = " · ".join(parts)
    if alert.status == Alert.Status.RETRACTED:
        summary += f" — Retracted: {alert.status_note}" if alert.status_note else " — Retracted"
    return summary


def _categories(request: HttpRequest, alert: Alert) -> list[tuple[str, str, str]]:
    base = request.build_absolute_uri(reverse("alerts:city"))
    return [
        (alert.category.slug, alert.category.name, f"{base}#category"),
        (alert.severity_slug, Severity(alert.severity).label, f"{base}#severity"),
    ]


def _atom_response(
    request: HttpRequest, *, title: str, link: str, alerts: list[Alert]
) -> HttpResponse:
    feed = AlertAtomFeed(
        title=title,
        link=request.build_absolute_uri(link),
        description="",
        feed_url=request.build_absolute_uri(),
        feed_guid=request.build_absolute_uri(),
        language="en",
        author_name=app_settings.CAP_SENDER_NAME or None,
    )
    for alert in alerts:
        url = request.build_absolute_uri(alert.get_absolute_url())
        feed.add_item(
            title=_title(alert),
            link=url,
            description=_summary(alert),
            unique_id=url,
            unique_id_is_permalink=True,
            pubdate=alert.starts_at,
            updateddate=alert.updated_at,
            author_name=alert.provenance,
            content_html=alert.body_html,
            labelled_categories=_categories(request, alert),
            georss=georss(alert),
        )
    response = HttpResponse(content_type=feed.content_type)
    feed.write(response, "utf-8")
    return response


@require_GET
def city_atom(request: HttpRequest) -> HttpResponse:
    """``/alerts/feed.atom``: active alerts in the whole city, newest first."""
    alerts = list(feed_alerts()[:FEED_LIMIT])
    return _atom_response(request, title="Alerts", link=reverse("alerts:city"), alerts=alerts)


@require_GET
def neighborhood_atom(request: HttpRequest, slug: str) -> HttpResponse:
    """``/neighborhoods/<slug>/alerts/feed.atom``: active alerts touching one neighborhood."""
    neighborhood = get_object_or_404(Neighborhood.objects.only("id", "name", "slug"), slug=slug)
    alerts = list(feed_alerts().filter(neighborhoods=neighborhood)[:FEED_LIMIT])
    return _atom_response(
        request,
        title=f"Alerts in {neighborhood.name}",
        link=reverse("alerts:neighborhood", args=[neighborhood.slug]),
        alerts=alerts,
    )


# GeoJSON --------------------------------------------------------------------------------------


def geojson_feature(alert: Alert) -> dict:
    properties = services.alert_payload(alert)
    geometry = properties.pop("area")
    return {"type": "Feature", "id": alert.pk, "geometry": geometry, "properties": properties}


def _bad_request(message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=400)


@require_GET
def active_geojson(request: HttpRequest) -> HttpResponse:
    """``/alerts/active.geojson``: active alerts as a FeatureCollection.

    Filters: ``neighborhood=<slug>``, ``kind=official|community``, ``category=<slug>``.
    """
    neighborhoods = None
    slug = request.GET.get("neighborhood", "").strip()
    if slug:
        neighborhood = Neighborhood.objects.filter(slug=slug).only("id").first()
        if neighborhood is None:
            raise Http404("No such neighborhood.")
        neighborhoods = [neighborhood]
    kind = request.GET.get("kind", "").strip()
    if kind and kind not in Alert.Kind.values:
        return _bad_request(f"kind must be one of {', '.join(Alert.Kind.values)}")
    category = request.GET.get("category", "").strip()
    if category and not AlertCategory.objects.filter(slug=category).exists():
        return _bad_request(f"unknown category {category!r}")
    alerts = list(services.feed(neighborhoods=neighborhoods, kind=kind, category=category))
    services.with_neighborhood_slugs(alerts)
    collection = {
        "type": "FeatureCollection",
        "features": [geojson_feature(alert) for alert in alerts],
    }
    return HttpResponse(
        json.dumps(collection, cls=DjangoJSONEncoder, ensure_ascii=False),
        content_type=GEOJSON_CONTENT_TYPE,
    )


# CAP ------------------------------------------------------------------------------------------


def _cap_element(
    request: HttpRequest, alert: Alert, names: list[str], times: dict[int, datetime]
) -> ET.Element:
    return cap.cap_message(
        alert,
        absolute_url=request.build_absolute_uri,
        neighborhood_names=names,
        revision_times=times,
    )


@require_GET
def cap_alert(request: HttpRequest, pk: int) -> HttpResponse:
    """``/alerts/<id>/cap.xml``: the current CAP 1.2 message of an official notice."""
    alert = get_object_or_404(
        Alert.objects.select_related("category", "department"),
        pk=pk,
        kind=Alert.Kind.OFFICIAL,
    )
    element = _cap_element(
        request,
        alert,
        _neighborhood_names([alert])[alert.pk],
        _revision_times([alert])[alert.pk],
    )
    return HttpResponse(cap.to_bytes(element), content_type=cap.CONTENT_TYPE)


@require_GET
def cap_index(request: HttpRequest) -> HttpResponse:
    """``/alerts/cap.atom``: official notices in force, each entry linking to its CAP message."""
    alerts = list(cap_index_alerts()[:FEED_LIMIT])
    names = _neighborhood_names(alerts)
    times = _revision_times(alerts)
    feed = AlertAtomFeed(
        title="Official alerts (CAP 1.2)",
        link=request.build_absolute_uri(reverse("alerts:city")),
        description="",
        feed_url=request.build_absolute_uri(),
        feed_guid=request.build_absolute_uri(),
        language="en",
        author_name=app_settings.CAP_SENDER_NAME or None,
        cap=True,
    )
    for alert in alerts:
        history = cap.message_history(alert, times[alert.pk])
        current = history[-1]
        cap_url = request.build_absolute_uri(reverse("alerts:cap", args=[alert.pk]))
        page_url = request.build_absolute_uri(alert.get_absolute_url())
        cap_elements = [
            ("identifier", current.identifier),
            ("event", alert.category.name),
            ("effective", cap.cap_time(alert.starts_at)),
        ]
        if alert.expires_at:
            cap_elements.append(("expires", cap.cap_time(alert.expires_at)))
        cap_elements += [
            ("status", "Actual"),
            ("msgType", cap.msg_type(alert)),
            ("category", cap.cap_category(alert)),
            ("urgency", cap.urgency_of(alert, current.sent)),
            ("severity", cap.SEVERITY_TO_CAP[Severity(alert.severity)]),
            ("certainty", cap.certainty_of(alert, current.sent)),
            ("areaDesc", "; ".join(names[alert.pk])),
        ]
        feed.add_item(
            title=_title(alert),
            link=cap_url,
            link_type="application/cap+xml",
            description=_summary(alert),
            unique_id=cap_url,
            pubdate=alert.starts_at,
            updateddate=current.sent,
            author_name=cap.sender_name(alert),
            extra_links=[
                {"rel": "related", "type": "text/html", "href": page_url},
            ],
            cap_elements=cap_elements,
            georss=georss(alert),
        )
    response = HttpResponse(content_type=feed.content_type)
    feed.write(response, "utf-8")
    return response
