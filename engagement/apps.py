from django.apps import AppConfig


class EngagementConfig(AppConfig):
    name = "engagement"
    label = "engagement"
    verbose_name = "311 cases"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from alerts.periodic import register_periodic_job
        from forums import hooks
        from neighborhoods.panels import register_panel

        from . import services, topics
        from .forwarding import forwarding_enabled
        from .views import neighborhood_panel, thread_panel

        topics.register()
        register_periodic_job(
            "forward_cases", "engagement.tasks.forward_due_task", enabled=forwarding_enabled
        )
        hooks.on_support_changed(services.thread_support_changed)
        hooks.register_thread_panel("case", thread_panel, order=10)
        register_panel("cases", neighborhood_panel, order=30)
