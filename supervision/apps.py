from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SupervisionConfig(AppConfig):
    name = "supervision"
    label = "supervision"
    verbose_name = _("Supervision and assessment")

    def ready(self) -> None:
        # The report's e-mail carries its workbook: the e-mail channel asks this app for it.
        from supervision import monthly  # noqa: F401
