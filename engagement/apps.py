from django.apps import AppConfig


class EngagementConfig(AppConfig):
    name = "engagement"
    label = "engagement"
    verbose_name = "311 cases"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from forums import hooks

        from . import services, topics

        topics.register()
        hooks.on_support_changed(services.thread_support_changed)
