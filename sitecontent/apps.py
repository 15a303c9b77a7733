from django.apps import AppConfig


class SitecontentConfig(AppConfig):
    name = "sitecontent"
    label = "sitecontent"
    verbose_name = "Site content"
    default_auto_field = "django.db.models.BigAutoField"
