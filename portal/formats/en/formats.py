"""English dates: ISO 8601 (2026-12-02), read the same way in every English-speaking country."""

SHORT_DATE_FORMAT = "Y-m-d"
SHORT_DATETIME_FORMAT = "Y-m-d H:i"
