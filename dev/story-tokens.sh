#!/usr/bin/env bash
# dev/story-tokens.sh DIR: makes fresh random tokens for the three principals of the
# governance story and writes DIR/tokens.textproto (the gateway's token file: SHA-256
# hashes only) and DIR/tokens.env (SLUICE_STORY_{REQUESTER,STEWARD,ETL,ADMIN}_TOKEN;
# sluicectl story reads the first three). Tenant "acme"; the steward holds
# metadata_steward; etl may publish as etl.pipeline only; admin manages triggers and
# notification sinks (trigger_admin).
set -euo pipefail
[[ $# == 1 && "$1" != -* ]] || { sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; [[ "${1:-}" == -h || "${1:-}" == --help ]]; exit $?; }
DIR="$1"
mkdir -p "$DIR"
token() { openssl rand -hex 24; }
sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
REQUESTER="$(token)"; STEWARD="$(token)"; ETL="$(token)"; ADMIN="$(token)"
umask 077
cat >"$DIR/tokens.textproto" <<TOKENS
principals { name: "analyst" token_sha256: "$(sha "$REQUESTER")" tenants: "acme" }
principals { name: "steward" token_sha256: "$(sha "$STEWARD")" tenants: "acme" roles: "metadata_steward" }
principals { name: "etl" token_sha256: "$(sha "$ETL")" tenants: "acme" sources: "etl.pipeline" }
principals { name: "admin" token_sha256: "$(sha "$ADMIN")" tenants: "acme" roles: "trigger_admin" }
TOKENS
cat >"$DIR/tokens.env" <<TOKENS
export SLUICE_STORY_REQUESTER_TOKEN=$REQUESTER
export SLUICE_STORY_STEWARD_TOKEN=$STEWARD
export SLUICE_STORY_ETL_TOKEN=$ETL
export SLUICE_STORY_ADMIN_TOKEN=$ADMIN
TOKENS
