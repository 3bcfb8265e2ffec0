#!/usr/bin/env bash
# Creates the secret files docker-compose mounts; existing files are kept.
set -euo pipefail
dir="$(cd "$(dirname "$0")" && pwd)/secrets"
mkdir -p "$dir"
gen() { [ -s "$dir/$1" ] || { ( umask 077; "$2" > "$dir/$1" ); echo "created $dir/$1"; }; }
rand() { head -c 32 /dev/urandom | base64 | tr -d '\n'; }
# URL-safe: goes into the database URL and into Authorization headers
token() { head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'; }
keyring() { printf '{"active":"k1","keys":{"k1":"%s"}}' "$(rand)"; }
gen admin-token token
gen alertmanager-token token
gen codec-token token
gen keyring.json keyring
gen payload-keys.json keyring
gen slack-signing-secret rand
gen postgres-password token
gen replication-password token
gen grafana-admin-password token
[ -s "$dir/database-url" ] || { ( umask 077; printf 'postgres://warden:%s@postgres:5432/warden' "$(cat "$dir/postgres-password")" > "$dir/database-url" ); echo "created $dir/database-url"; }
