"""Editor-owned pages around the live content: a home page and one page per neighborhood."""

from __future__ import annotations

from django.db import models
from django.db.models import Count
from django.http import HttpRequest
from wagtail.admin.panels import FieldPanel
from wagtail.fields import RichTextField
from wagtail.models import Page
from wagtail.search import index

from alerts import services as alert_services
from alerts.live import mark_cursor
from neighborhoods.context import neighborhood_context
from neighborhoods.models import Neighborhood, Organization
from neighborhoods.panels import render_panels

RICH_TEXT_FEATURES = ["h2", "h3", "bold", "italic", "link", "ol", "ul", "document-link", "image"]


class HomePage(Page):
    """The site's front page: the editors' introduction above the neighborhoods and the map."""

    intro = RichTextField(blank=True, features=RICH_TEXT_FEATURES)
    body = RichTextField(blank=True, features=RICH_TEXT_FEATURES)

    content_panels = [*Page.content_panels, FieldPanel("intro"), FieldPanel("body")]
    search_fields = [*Page.search_fields, index.SearchField("intro"), index.SearchField("body")]
    subpage_types = ["sitecontent.NeighborhoodPage", "sitecontent.HomePage"]
    max_count_per_parent = 1

    class Meta:
        verbose_name = "home page"

    def get_context(self, request: HttpRequest, *args, **kwargs) -> dict:
        context = super().get_context(request, *args, **kwargs)
        mark_cursor(request)
        context["neighborhood_count"] = Neighborhood.objects.count()
        context["largest_neighborhoods"] = (
            Neighborhood.objects.annotate(member_count=Count("memberships"))
            .defer("boundary", "source_properties")
            .filter(member_count__gt=0)
            .order_by("-member_count", "name")[:8]
        )
        context["organization_count"] = Organization.objects.count()
        context["alerts"] = list(alert_services.feed()[:5])
        context["neighborhood_pages"] = (
            NeighborhoodPage.objects.live().public().child_of(self).order_by("title")[:50]
        )
        return context


class NeighborhoodPage(Page):
    """Editors' words about one neighborhood, shown with its live boundary and membership."""

    neighborhood = models.ForeignKey(
        Neighborhood,
        on_delete=models.PROTECT,
        related_name="pages",
        help_text="Which neighborhood.",
    )
    intro = RichTextField(blank=True, features=RICH_TEXT_FEATURES)
    body = RichTextField(blank=True, features=RICH_TEXT_FEATURES)

    content_panels = [
        *Page.content_panels,
        FieldPanel("neighborhood"),
        FieldPanel("intro"),
        FieldPanel("body"),
    ]
    search_fields = [*Page.search_fields, index.SearchField("intro"), index.SearchField("body")]
    parent_page_types = ["sitecontent.HomePage"]
    subpage_types: list[str] = []

    class Meta:
        verbose_name = "neighborhood page"

    def get_context(self, request: HttpRequest, *args, **kwargs) -> dict:
        context = super().get_context(request, *args, **kwargs)
        neighborhood = Neighborhood.objects.annotate(member_count=Count("memberships")).get(
            pk=self.neighborhood_id
        )
        context.update(neighborhood_context(request.user, neighborhood))
        context["panels"] = render_panels(request, neighborhood)
        return context
