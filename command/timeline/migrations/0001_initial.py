# The timeline moved here from the incidents app: its table and index keep their names, so this
# migration only tells Django's state where the model now lives.

import uuid

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("incidents", "0009_whistle_joint_confirmation"),
        ("org", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="TimelineEntry",
                    fields=[
                        (
                            "pk",
                            models.CompositePrimaryKey(
                                "time",
                                "id",
                                blank=True,
                                editable=False,
                                primary_key=True,
                                serialize=False,
                            ),
                        ),
                        ("id", models.UUIDField(default=uuid.uuid4, editable=False)),
                        (
                            "time",
                            models.DateTimeField(
                                default=django.utils.timezone.now, verbose_name="time"
                            ),
                        ),
                        ("subject_type", models.CharField(max_length=24, verbose_name="subject")),
                        ("subject_id", models.BigIntegerField(verbose_name="subject id")),
                        ("action", models.CharField(max_length=48, verbose_name="action")),
                        (
                            "source",
                            models.CharField(
                                choices=[
                                    ("web", "Web"),
                                    ("api", "API"),
                                    ("mqtt", "MQTT"),
                                    ("system", "System"),
                                ],
                                max_length=8,
                                verbose_name="source",
                            ),
                        ),
                        ("before", models.JSONField(blank=True, null=True, verbose_name="before")),
                        ("after", models.JSONField(blank=True, null=True, verbose_name="after")),
                        (
                            "actor",
                            models.ForeignKey(
                                blank=True,
                                db_constraint=False,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                to=settings.AUTH_USER_MODEL,
                                verbose_name="actor",
                            ),
                        ),
                        (
                            "township",
                            models.ForeignKey(
                                db_constraint=False,
                                on_delete=django.db.models.deletion.CASCADE,
                                to="org.township",
                                verbose_name="township",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "timeline entry",
                        "verbose_name_plural": "timeline",
                        "db_table": "incidents_timelineentry",
                        "indexes": [
                            models.Index(
                                fields=["subject_type", "subject_id", "time"],
                                name="incidents_t_subject_2e66cb_idx",
                            )
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
