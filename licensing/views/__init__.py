"""Licensing pages: keys and files (`keys`), the license list and pages (`licenses`), sharing
(`shares`) and custom data (`custom_data`)."""
