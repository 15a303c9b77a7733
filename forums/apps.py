from django.apps import AppConfig


class ForumsConfig(AppConfig):
    name = "forums"
    label = "forums"
    verbose_name = "Neighborhood forums"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from neighborhoods.panels import register_panel

        from . import topics
        from .views import neighborhood_panel

        topics.register()
        register_panel("discussions", neighborhood_panel, order=20)
