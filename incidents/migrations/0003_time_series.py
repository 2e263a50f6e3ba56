from django.db import migrations

from streams.timeseries import migration_operation


class Migration(migrations.Migration):
    dependencies = [("incidents", "0002_initial")]

    operations = [migration_operation("incidents_timelineentry")]
