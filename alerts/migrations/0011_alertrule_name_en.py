"""Alert rules get an English name beside the Chinese one. Names written as "中文 English" in the
one field are split in two, and the alerts those rules raised keep both names (and what else
their titles need) in their detail, so their titles read in one language at a time."""

import re

from django.db import migrations, models

# Chinese, kana and full-width forms: what makes a part of a name the Chinese part.
_CJK = "\u2e80-\u2fff\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
# "盗采机械 Mining machinery", "PM2.5超标 / PM2.5 too high": a part that ends in Chinese (and
# perhaps a digit or a bracket), a space or separator, then a part with letters and no Chinese.
_BILINGUAL = re.compile(
    rf"^(?P<zh>.*[{_CJK}][^\sA-Za-z{_CJK}]*)[\s/|·｜]+(?P<en>[^{_CJK}]*[A-Za-z][^{_CJK}]*)$"
)
_SEPARATORS = " /|·｜-"


def split_bilingual(name: str) -> tuple[str, str]:
    """A name written as "中文 English" in one field, as (Chinese, English); a name in one
    language only, or in an order this cannot tell, is (name, "")."""
    text = " ".join(name.split())
    match = _BILINGUAL.match(text)
    if match is None:
        return text, ""
    zh, english = match["zh"].strip(_SEPARATORS), match["en"].strip(_SEPARATORS)
    if not zh or not english:
        return text, ""
    return zh, english


# The alerts raised by a rule before this keep its pk only: give them its names (as split) and
# their device's code, and a rate's period, which their titles are composed from.
_ALERT_FACTS = """
UPDATE alerts_alert a
   SET detail = a.detail
       || jsonb_build_object('rule_name', r.name, 'rule_name_en', r.name_en)
       || CASE WHEN a.detail -> 'rate' IS NOT NULL AND a.detail -> 'per_seconds' IS NULL
               THEN jsonb_build_object('per_seconds', r.per_seconds) ELSE '{}'::jsonb END
       || CASE WHEN a.device_id IS NOT NULL AND a.detail -> 'device_code' IS NULL
               THEN jsonb_build_object(
                      'device_code', (SELECT d.code FROM org_device d WHERE d.id = a.device_id))
               ELSE '{}'::jsonb END
  FROM alerts_alertrule r
 WHERE jsonb_typeof(a.detail) = 'object'
   AND jsonb_typeof(a.detail -> 'rule') = 'number'
   AND a.detail -> 'rule_name' IS NULL
   AND r.id = (a.detail ->> 'rule')::numeric
"""


def split_rule_names(apps, schema_editor) -> None:
    AlertRule = apps.get_model("alerts", "AlertRule")
    for rule in AlertRule.objects.filter(name_en="").only("pk", "name"):
        zh, english = split_bilingual(rule.name)
        if english:
            AlertRule.objects.filter(pk=rule.pk).update(name=zh, name_en=english)
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(_ALERT_FACTS)


class Migration(migrations.Migration):

    dependencies = [
        ('alerts', '0010_alert_source_intake'),
    ]

    operations = [
        migrations.AddField(
            model_name='alertrule',
            name='name_en',
            field=models.CharField(blank=True, max_length=120, verbose_name='name (English)'),
        ),
        migrations.AlterField(
            model_name='alertrule',
            name='name',
            field=models.CharField(max_length=120, verbose_name='name (Chinese)'),
        ),
        migrations.RunPython(split_rule_names, migrations.RunPython.noop, elidable=False),
    ]
