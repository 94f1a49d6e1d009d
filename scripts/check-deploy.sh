#!/usr/bin/env bash
# `manage.py check --deploy` with production settings: a throwaway secret and signing key.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export PORTAL_VAR_DIR="$tmp" LICENSE_SIGNING_KEY_FILE="$tmp/signing-key.pem"
.venv/bin/python manage.py signing_key create --path "$LICENSE_SIGNING_KEY_FILE" >/dev/null
DJANGO_PRODUCTION=true DJANGO_DEBUG=false \
DJANGO_SECRET_KEY="$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(64))')" \
DJANGO_ALLOWED_HOSTS=licensing.example.com \
  .venv/bin/python manage.py check --deploy --fail-level WARNING
