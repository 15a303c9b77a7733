"""The Atom feed of a neighborhood's discussions: its newest listed threads.

Summaries are plain text; hidden, deleted and merged threads are never in it. A fixed number of
queries, however many threads there are.
"""

from __future__ import annotations

from django.contrib.syndication.views import Feed
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.feedgenerator import Atom1Feed

from neighborhoods.models import Neighborhood
from neighborhoods.text import plain_text

from . import services
from .models import Thread
from .views import HEAVY_NEIGHBORHOOD_FIELDS

ATOM_SIZE = 50


class ThreadAtom(Atom1Feed):
    """Atom whose ``<summary>`` is plain text (Django's is typed as HTML)."""

    def add_item_elements(self, handler, item) -> None:
        summary = item.pop("summary_text", None)
        super().add_item_elements(handler, item)
        if summary:
            handler.addQuickElement("summary", summary)


class NeighborhoodThreadsFeed(Feed):
    """``/neighborhoods/<slug>/discussions/feed.atom``: the newest listed threads."""

    feed_type = ThreadAtom

    def get_object(self, request: HttpRequest, slug: str) -> Neighborhood:
        return get_object_or_404(
            Neighborhood.objects.defer("boundary", "source_properties"), slug=slug
        )

    def title(self, neighborhood: Neighborhood) -> str:
        return f"Discussions in {neighborhood.name}"

    def link(self, neighborhood: Neighborhood) -> str:
        return reverse("forums:neighborhood", args=[neighborhood.slug])

    def subtitle(self, neighborhood: Neighborhood) -> str:
        return f"The newest discussions of neighbours in {neighborhood.name}."

    def items(self, neighborhood: Neighborhood) -> list[Thread]:
        threads = services.feed(neighborhood, sort="new").defer(*HEAVY_NEIGHBORHOOD_FIELDS)
        # Newest first: pinned threads do not lead a feed reader's list.
        threads = threads.order_by("-created_at", "-id")[:ATOM_SIZE]
        return services.with_tag_names(threads)

    def item_title(self, thread: Thread) -> str:
        return thread.title

    def item_description(self, thread: Thread) -> None:
        return None

    def item_extra_kwargs(self, thread: Thread) -> dict:
        return {"summary_text": plain_text(thread.body, 500)}

    def item_link(self, thread: Thread) -> str:
        return thread.get_absolute_url()

    def item_author_name(self, thread: Thread) -> str:
        return services.author_name(thread.author)

    def item_pubdate(self, thread: Thread):
        return thread.created_at

    def item_updateddate(self, thread: Thread):
        return thread.edited_at or thread.created_at

    def item_categories(self, thread: Thread) -> list[str]:
        return [thread.category.name, *thread._tag_names]
