"""A node_state event's node and status as columns, filled in for the events already kept;
indexes of the structure changes and cost updates (history looks them up)."""

from django.db import migrations, models
from django.db.models.fields.json import KT


def fill(apps, schema_editor):
    Event = apps.get_model("dagstream_app", "Event")
    Event.objects.filter(type="node_state").update(
        node_id=KT("payload__node_id"), status=KT("payload__status")
    )


class Migration(migrations.Migration):
    dependencies = [
        ("dagstream_app", "0011_notifications"),
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
        migrations.AddIndex(
            model_name="event",
            index=models.Index(
                condition=models.Q(type="dag_mutated"),
                fields=["dag", "seq"],
                name="dagstream_event_mutated",
            ),
        ),
        migrations.AddIndex(
            model_name="event",
            index=models.Index(
                condition=models.Q(type="cost_update"),
                fields=["dag", "seq"],
                name="dagstream_event_cost",
            ),
        ),
    ]
