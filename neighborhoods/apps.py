from django.apps import AppConfig


class NeighborhoodsConfig(AppConfig):
    name = "neighborhoods"
    label = "neighborhoods"
    verbose_name = "Neighborhoods and people"
    default_auto_field = "django.db.models.BigAutoField"
