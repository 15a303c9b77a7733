from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"
    label = "alerts"
    verbose_name = "Alerts and live updates"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import topics

        topics.register()
