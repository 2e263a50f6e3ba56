from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OrgConfig(AppConfig):
    name = "command.org"
    label = "org"
    verbose_name = _("Organisation")

    def ready(self) -> None:
        from command.org import signals  # noqa: F401 - connects the receivers
