"""The plugin's URLs. In the host's ``urls.py``, before Wagtail's catch-all::

path("", include("engagement.urls")),
"""

from django.http import JsonResponse
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from neighborhoods.apibase import exception_handler


def api_not_found(request, *args, **kwargs):
    return JsonResponse(
        {"error": {"code": "not_found", "message": "No such API endpoint."}}, status=404
    )


class SchemaView(SpectacularAPIView):
    def get_exception_handler(self):
        return exception_handler


api_patterns = [
    path("schema/", SchemaView.as_view(api_version="1"), name="api-schema"),
    path("", include("neighborhoods.api_urls")),
    path("<path:rest>", api_not_found),
]

urlpatterns = [
    path("api/v1/", include(api_patterns)),
    path("", include("neighborhoods.urls")),
]
