"""The case library's text search: a trigram index (pg_trgm, a contrib extension shipped with
PostgreSQL) on the searched text, the same expression ``supervision.cases`` filters with
``ILIKE``. PostgreSQL's default text-search parser does not split Chinese into words; trigrams
of characters work for any language (docs/benchmarks.md, "Case library"). And the library's
pages, newest first: ``(opened_at, id)`` read backwards."""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations, models

INDEX = "incidents_case_text_trgm"


class Migration(migrations.Migration):
    dependencies = [
        ("incidents", "0011_acceptance_finishing_callback"),
    ]

    operations = [
        TrigramExtension(),
        migrations.RunSQL(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON incidents_incident USING gin"
            " ((title || ' ' || description || ' ' || feedback) gin_trgm_ops)",
            reverse_sql=f"DROP INDEX IF EXISTS {INDEX}",
        ),
        migrations.AddIndex(
            model_name="incident",
            index=models.Index(fields=["opened_at", "id"], name="incidents_opened_id"),
        ),
    ]
