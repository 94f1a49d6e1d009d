"""The portal's password hasher: Argon2id at OWASP's recommended minimum (19 MiB, 2 passes,
1 lane).

Django's default, PBKDF2-SHA256 at 1,000,000 iterations, costs about 250 ms of CPU per login on
the reference machine, and logins were what queued the rest of the traffic at 40 users
(bench/LOAD.md). Argon2id is memory-hard, so a GPU gains far less on it, and at these parameters
a login costs about 22 ms. Django's own Argon2 defaults (100 MiB, 8 lanes) cost 195 ms of CPU
and 100 MiB per concurrent login.

The stored form is Django's "argon2" format: Django's stock Argon2PasswordHasher reads it, and
a hash made with other parameters (or by PBKDF2, which settings keep listed) is upgraded at the
user's next successful login.
"""

from __future__ import annotations

from django.contrib.auth.hashers import Argon2PasswordHasher


class PortalArgon2PasswordHasher(Argon2PasswordHasher):
    time_cost = 2
    memory_cost = 19 * 1024  # KiB
    parallelism = 1
