"""One name per live file of a release (fileconnect_releasefile_one_live_name).

Only relabelling refused a sibling's name: files added through the upload page or `manage.py
releases add-file` could share one. Which of two such files customers should get is for a person
to say, so this migration changes no file: it stops, naming them, until all but one are
withdrawn or relabelled (admin, Release files).
"""

from __future__ import annotations

from typing import Any

from django.db import migrations, models
from django.db.models import Count


def refuse_shared_names(apps: Any, schema_editor: Any) -> None:
    release_file = apps.get_model("fileconnect", "ReleaseFile")
    shared = list(
        release_file.objects.filter(withdrawn_at__isnull=True)
        .values("release_id", "display_name")
        .annotate(files=Count("pk"))
        .filter(files__gt=1)
        .order_by("release_id", "display_name")
    )
    if not shared:
        return
    lines = []
    for group in shared:
        ids = release_file.objects.filter(
            withdrawn_at__isnull=True,
            release_id=group["release_id"],
            display_name=group["display_name"],
        ).values_list("pk", flat=True)
        lines.append(
            f"  release {group['release_id']}: {group['display_name']} "
            f"(files {', '.join(str(pk) for pk in sorted(ids))})"
        )
    raise RuntimeError(
        "Live files of one release share a name:\n"
        + "\n".join(lines)
        + "\nWithdraw or relabel all but one of each in admin (Release files), then migrate again."
    )


class Migration(migrations.Migration):
    dependencies = [
        ("fileconnect", "0003_releasefile_withdrawn_at"),
    ]

    operations = [
        migrations.RunPython(refuse_shared_names, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="releasefile",
            constraint=models.UniqueConstraint(
                condition=models.Q(("withdrawn_at__isnull", True)),
                fields=("release", "display_name"),
                name="fileconnect_releasefile_one_live_name",
            ),
        ),
    ]
