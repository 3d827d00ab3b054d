from typing import Any

from django.db import migrations, models
from django.db.models import F


def seen_when_last_updated(apps: Any, schema_editor: Any) -> None:
    # Runs from before the heartbeat: their last change is the best guess.
    apps.get_model("dagstream_app", "Dag").objects.update(engine_seen_at=F("updated_at"))


class Migration(migrations.Migration):
    dependencies = [
        ("dagstream_app", "0002_structure_version"),
    ]

    operations = [
        migrations.AddField(
            model_name="dag",
            name="engine_seen_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(seen_when_last_updated, migrations.RunPython.noop),
    ]
