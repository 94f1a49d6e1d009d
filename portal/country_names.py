"""Country names as Brazilians write them, where django-countries' pt_BR catalog has European
Portuguese ("Eslovénia", "Letónia", "Iémen") or a wrong name ("Dominicana" for Dominica).

The portal's catalog (LOCALE_PATHS) takes precedence over the package's, so translating these
msgids in portal/locale overrides its names wherever a country is shown; listed here with
gettext_noop so that `make messages` keeps them. The msgids are the names django-countries
looks up (its ISO names, and the common names it uses instead for some codes).
"""

from django.utils.translation import gettext_noop

BRAZILIAN_NAMES = [
    gettext_noop("Åland Islands"),  # Ilhas Åland
    gettext_noop("Bahrain"),  # Bahrein
    gettext_noop("Czechia"),  # Tchéquia
    gettext_noop("Czech Republic"),  # República Tcheca
    gettext_noop("Dominica"),  # Dominica (not the Dominican Republic)
    gettext_noop("Guam"),  # Guam
    gettext_noop("Guernsey"),  # Guernsey
    gettext_noop("Jersey"),  # Jersey
    gettext_noop("Kuwait"),  # Kuwait
    gettext_noop("Latvia"),  # Letônia
    gettext_noop("Liechtenstein"),  # Liechtenstein
    gettext_noop("Madagascar"),  # Madagascar
    gettext_noop("Malawi"),  # Malawi
    gettext_noop("Monaco"),  # Mônaco
    gettext_noop("Nigeria"),  # Nigéria
    gettext_noop("North Korea"),  # Coreia do Norte
    gettext_noop("Oman"),  # Omã
    gettext_noop("Slovenia"),  # Eslovênia
    gettext_noop("South Korea"),  # Coreia do Sul
    gettext_noop("Svalbard and Jan Mayen"),  # Svalbard e Jan Mayen
    gettext_noop("Timor-Leste"),  # Timor-Leste
    gettext_noop("Yemen"),  # Iêmen
]
