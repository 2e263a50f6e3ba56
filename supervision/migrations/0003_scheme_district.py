"""An assessment scheme names its district by row (org.District), not by the name written on
its townships."""

import django.db.models.deletion
from django.db import migrations, models


def districts_by_name(apps, schema_editor):
    District = apps.get_model("org", "District")
    AssessmentScheme = apps.get_model("supervision", "AssessmentScheme")
    for scheme in AssessmentScheme.objects.exclude(district_name=""):
        district = District.objects.filter(name=scheme.district_name).order_by("pk").first()
        if district is None:
            taken = District.objects.count()
            district = District.objects.create(
                code=f"district-{taken + 1}", name=scheme.district_name
            )
        scheme.district = district
        scheme.save(update_fields=["district"])


def names_by_district(apps, schema_editor):
    AssessmentScheme = apps.get_model("supervision", "AssessmentScheme")
    for scheme in AssessmentScheme.objects.select_related("district").exclude(district=None):
        scheme.district_name = scheme.district.name
        scheme.save(update_fields=["district_name"])


class Migration(migrations.Migration):
    dependencies = [
        ("org", "0009_district"),
        ("supervision", "0002_monthly_report"),
    ]

    operations = [
        migrations.RenameField("assessmentscheme", "district", "district_name"),
        migrations.AlterField(
            model_name="assessmentscheme",
            name="district_name",
            field=models.CharField(blank=True, max_length=120),
        ),
        migrations.AddField(
            model_name="assessmentscheme",
            name="district",
            field=models.ForeignKey(
                blank=True,
                help_text="Empty: every district without a scheme of its own.",
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="assessment_schemes",
                to="org.district",
                verbose_name="district",
            ),
        ),
        migrations.RunPython(districts_by_name, names_by_district),
        migrations.RemoveField("assessmentscheme", "district_name"),
        migrations.AlterModelOptions(
            name="assessmentscheme",
            options={
                "ordering": ["district__code"],
                "verbose_name": "assessment scheme",
                "verbose_name_plural": "assessment schemes",
            },
        ),
        migrations.AddConstraint(
            model_name="assessmentscheme",
            constraint=models.UniqueConstraint(
                fields=("district",), name="one_scheme_per_district", nulls_distinct=False
            ),
        ),
    ]
