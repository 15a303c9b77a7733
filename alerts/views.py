"""HTML views of alerts (being written)."""

from django.http import Http404


def _todo(request, *args, **kwargs):
    raise Http404("Not yet")


city_feed = my_feed = report_new = official_new = alert_detail = alert_edit = alert_action = (
    neighborhood_feed
) = _todo
