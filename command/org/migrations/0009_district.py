"""Districts become rows: each district name written on townships becomes a District, and the
townships point at it; users gain a district scope."""

import django.db.models.deletion
from django.db import migrations, models


def districts_from_names(apps, schema_editor):
    District = apps.get_model("org", "District")
    Township = apps.get_model("org", "Township")
    names = sorted(
        {name for name in Township.objects.values_list("district_name", flat=True) if name}
    )
    for number, name in enumerate(names, start=1):
        district = District.objects.create(code=f"district-{number}", name=name)
        Township.objects.filter(district_name=name).update(district=district)


def names_from_districts(apps, schema_editor):
    Township = apps.get_model("org", "Township")
    for township in Township.objects.select_related("district").exclude(district=None):
        township.district_name = township.district.name
        township.save(update_fields=["district_name"])


class Migration(migrations.Migration):
    dependencies = [("org", "0008_oncall_notify")]

    operations = [
        migrations.CreateModel(
            name="District",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=120, verbose_name="name (Chinese)")),
                ("name_en", models.CharField(blank=True, max_length=120, verbose_name="name (English)")),
                ("code", models.SlugField(max_length=40, unique=True, verbose_name="code")),
            ],
            options={"verbose_name": "district", "verbose_name_plural": "districts", "ordering": ["code"]},
        ),
        migrations.RenameField("township", "district", "district_name"),
        migrations.AddField(
            model_name="township",
            name="district",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="townships",
                to="org.district",
                verbose_name="district",
            ),
        ),
        migrations.RunPython(districts_from_names, names_from_districts),
        migrations.RemoveField("township", "district_name"),
        migrations.AddField(
            model_name="user",
            name="district",
            field=models.ForeignKey(
                blank=True,
                help_text="Scope of a district duty officer, supervisor or administrator (every township of the district). Leave empty for a township's people.",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="users",
                to="org.district",
                verbose_name="district",
            ),
        ),
    ]
