"""Brazilian Portuguese dates: day first (02/12/2026), as Brazilians write them."""

SHORT_DATE_FORMAT = "d/m/Y"
SHORT_DATETIME_FORMAT = "d/m/Y H:i"
