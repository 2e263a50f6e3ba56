# The timeline moved to command.timeline (state only: the table stays where it is).

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("incidents", "0009_whistle_joint_confirmation"),
        ("timeline", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="TimelineEntry")],
            database_operations=[],
        ),
    ]
