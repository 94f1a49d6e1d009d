from django.db import migrations


def backfill(apps, schema_editor):
    """Every serial already redeemed gets its redemption row, so the guarantee covers it too."""
    SerialNumber = apps.get_model("licensing", "SerialNumber")
    SerialRedemption = apps.get_model("licensing", "SerialRedemption")
    redeemed = SerialNumber.objects.filter(status="redeemed", redemption__isnull=True)
    rows = [
        SerialRedemption(
            serial_id=serial.pk,
            code=serial.code,
            kind=serial.kind,
            license_id=serial.license_id,
            organization_id=serial.redeemed_by_id,
            redeemed_at=serial.redeemed_at or serial.created_at,
        )
        for serial in redeemed.iterator(chunk_size=2000)
    ]
    SerialRedemption.objects.bulk_create(rows, batch_size=2000)


class Migration(migrations.Migration):
    dependencies = [("licensing", "0006_serial_redemption")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
