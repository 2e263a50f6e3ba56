from django.db import migrations

from streams.timeseries import realtime_aggregate_operation


class Migration(migrations.Migration):
    # The device panel and the sensor history read the minute aggregate up to now.
    dependencies = [("streams", "0005_gridreport_photos")]

    operations = [realtime_aggregate_operation()]
