#!/usr/bin/env bash
# Creates the secret files docker-compose mounts; existing files are kept (fill in the provider
# credentials files by hand: they are created empty, which leaves that provider on the sandbox).
set -euo pipefail
dir="$(cd "$(dirname "$0")" && pwd)/secrets"
mkdir -p "$dir"
gen() { [ -s "$dir/$1" ] || { ( umask 077; "$2" > "$dir/$1" ); echo "created $dir/$1"; }; }
rand() { head -c 32 /dev/urandom | base64 | tr -d '\n'; }
# URL-safe: goes into the database URL and into Authorization headers
token() { head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'; }
keyring() { printf '{"active":"k1","keys":{"k1":"%s"}}' "$(rand)"; }
# no credentials: the provider stays on the sandbox until its real ones are written here, e.g.
# twilio-credentials.json {"account_sid": "AC...", "auth_token": "..."} (docs/operations.md)
no_credentials() { printf '{}\n'; }
# the primary, and every failover candidate: the streaming replica the database-failover
# runbook promotes (the same role and password: the replica is a copy of the primary)
database_url() { printf 'postgres://warden:%s@postgres:5432/warden' "$(cat "$dir/postgres-password")"; }
database_urls() {
  printf 'postgres://warden:%s@postgres:5432/warden,postgres://warden:%s@postgres-replica:5432/warden' \
    "$(cat "$dir/postgres-password")" "$(cat "$dir/postgres-password")"
}
gen admin-token token
gen alertmanager-token token
gen codec-token token
gen codec-encode-token token
gen keyring.json keyring
gen payload-keys.json keyring
gen slack-signing-secret rand
gen postgres-password token
gen replication-password token
gen temporal-postgres-password token
gen grafana-admin-password token
gen database-url database_url
gen database-urls database_urls
gen twilio-credentials.json no_credentials
gen plivo-credentials.json no_credentials
gen sendgrid-credentials.json no_credentials
gen ses-credentials.json no_credentials
gen slack-credentials.json no_credentials
# hCaptcha's secret and site key: empty until written here (production refuses to start without)
touch "$dir/hcaptcha-secret" "$dir/hcaptcha-site-key"
# the Slack incoming-webhook URL Alertmanager pages through when Warden itself is down: empty
# until an operator writes it here (docs/alerts.md); until then those pages fail
touch "$dir/alertmanager-fallback-slack-url"
