from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AlertsConfig(AppConfig):
    name = "alerts"
    verbose_name = _("Alerts")

    def ready(self) -> None:
        from alerts.evaluation import alerts_from_stored
        from streams.handoff import on_stored

        # Streams is below alerts: it hands its stored batches up through this registration.
        on_stored(alerts_from_stored)
        # Each channel module registers itself with the notifications (alerts.delivery.people).
        import alerts.delivery.channels  # noqa: F401
