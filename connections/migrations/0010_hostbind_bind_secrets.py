"""Bind every stored secret to its connection's current origin (scheme://host:port).

From now on the client sends a credential only to the origin recorded in its meta; credentials
stored before that binding existed are bound to where their connection points today, which is
where they were being sent anyway. Never reads or rewrites the encrypted secret."""

from django.db import migrations


def bind(apps, schema_editor):
    from connections.outbound.guard import origin

    Credential = apps.get_model("connections", "Credential")
    rows = Credential.objects.values_list("pk", "meta", "connection__base_url")
    for pk, meta, base_url in rows.iterator():
        meta = meta or {}
        if "origin" not in meta:
            Credential.objects.filter(pk=pk).update(meta={**meta, "origin": origin(base_url)})


class Migration(migrations.Migration):
    dependencies = [("connections", "0009_rotation_credential_rejected_and_rotation_meta")]
    operations = [migrations.RunPython(bind, migrations.RunPython.noop)]
