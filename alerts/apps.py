from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"
    label = "alerts"
    verbose_name = "Alerts and live updates"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from neighborhoods.panels import register_panel

        from . import topics
        from .views import neighborhood_panel

        topics.register()
        register_panel("alerts", neighborhood_panel, order=10)
