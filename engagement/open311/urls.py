"""Open311 GeoReport v2 at ``open311/v2/`` and its discovery at ``open311/discovery.<format>``.

Anything else under ``open311/`` answers a 404 in the standard's error format, so no request
here ever meets an HTML page or a trailing-slash redirect.
"""

from django.urls import re_path

from . import views

app_name = "open311"

FORMAT = r"\.(?P<fmt>json|xml)$"
V2 = r"^v2/+"  # tolerate the double slash of clients joining "<url>/" and "/<resource>"

urlpatterns = [
    re_path(r"^discovery" + FORMAT, views.discovery, name="discovery"),
    re_path(V2 + r"discovery" + FORMAT, views.discovery, name="endpoint-discovery"),
    re_path(V2 + r"services" + FORMAT, views.service_list, name="services"),
    re_path(V2 + r"services/(?P<code>[^/]+)" + FORMAT, views.service_definition, name="service"),
    re_path(V2 + r"requests" + FORMAT, views.requests_resource, name="requests"),
    re_path(V2 + r"requests/(?P<request_id>[^/]+)" + FORMAT, views.request_detail, name="request"),
    re_path(V2 + r"tokens/(?P<token>[^/]+)" + FORMAT, views.token_lookup, name="token"),
    # Singular paths that circulate in old client libraries and Swagger files.
    re_path(V2 + r"service/(?P<code>[^/]+)" + FORMAT, views.service_definition),
    re_path(V2 + r"request/(?P<request_id>[^/]+)" + FORMAT, views.request_detail),
    re_path(r"^(?P<rest>.*)$", views.not_found),
]
