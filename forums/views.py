"""Pages of the forums (being written)."""

from django.contrib.syndication.views import Feed
from django.http import HttpResponse


def _todo(request, *args, **kwargs):
    return HttpResponse(status=501)


my_feed = search = neighborhood_feed = thread_new = thread_detail = thread_edit = _todo
thread_action = reply_action = _todo


class NeighborhoodThreadsFeed(Feed):
    pass
