"""A node_state event's node and status as columns, filled in for the events already kept."""

from django.db import migrations, models
from django.db.models.fields.json import KT


def fill(apps, schema_editor):
    Event = apps.get_model("dagstream_app", "Event")
    Event.objects.filter(type="node_state").update(
        node_id=KT("payload__node_id"), status=KT("payload__status")
    )


class Migration(migrations.Migration):
    dependencies = [
        ("dagstream_app", "0012_event_type_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="event",
            name="node_id",
            field=models.CharField(blank=True, db_default="", default="", max_length=200),
        ),
        migrations.AddField(
            model_name="event",
            name="status",
            field=models.CharField(blank=True, db_default="", default="", max_length=16),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
