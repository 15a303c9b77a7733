from django.apps import AppConfig


class EngagementConfig(AppConfig):
    name = "engagement"
    label = "engagement"
    verbose_name = "311 cases"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from alerts.periodic import register_periodic_job
        from forums import hooks

        from . import services, topics
        from .forwarding import forwarding_enabled

        topics.register()
        register_periodic_job(
            "forward_cases", "engagement.tasks.forward_due_task", enabled=forwarding_enabled
        )
        hooks.on_support_changed(services.thread_support_changed)
