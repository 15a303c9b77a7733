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


def only_plugin_api(endpoints: list, **kwargs) -> list:
    """Document the plugin's ``/api/v1/`` alone, not other DRF views of the host (Wagtail's)."""
    return [endpoint for endpoint in endpoints if endpoint[0].startswith("/api/v1/")]


class SchemaView(SpectacularAPIView):
    custom_settings = {"PREPROCESSING_HOOKS": ["engagement.urls.only_plugin_api"]}

    def get_exception_handler(self):
        return exception_handler


api_patterns = [
    path("schema/", SchemaView.as_view(api_version="1"), name="api-schema"),
    path("", include("neighborhoods.api_urls")),
    path("", include("alerts.api_urls")),
    path("", include("forums.api_urls")),
    path("", include("engagement.api_urls")),
    path("<path:rest>", api_not_found),
]

urlpatterns = [
    path("api/v1/", include(api_patterns)),
    path("open311/", include("engagement.open311.urls")),
    path("", include("neighborhoods.urls")),
    path("", include("alerts.urls")),
    path("", include("forums.urls")),
    path("", include("engagement.case_urls")),
]
