from django.db import migrations

from streams.timeseries import policies_operation


class Migration(migrations.Migration):
    # A continuous aggregate cannot be created inside a transaction block.
    atomic = False

    dependencies = [("streams", "0002_time_series")]

    operations = [policies_operation()]
