from django.db import migrations

from streams.timeseries import migration_operation


class Migration(migrations.Migration):
    dependencies = [("streams", "0001_initial")]

    operations = [
        migration_operation("streams_reading"),
        migration_operation("streams_deviceevent"),
    ]
