from django.apps import AppConfig


class ForumsConfig(AppConfig):
    name = "forums"
    label = "forums"
    verbose_name = "Neighborhood forums"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import topics

        topics.register()
