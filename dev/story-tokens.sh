#!/usr/bin/env bash
# dev/story-tokens.sh DIR: makes fresh random tokens for the three principals of the
# governance story and writes DIR/tokens.textproto (the gateway's token file: SHA-256
# hashes only) and DIR/tokens.env (SLUICE_STORY_{REQUESTER,STEWARD,ETL}_TOKEN, which
# sluicectl story reads). Tenant "acme"; the steward holds metadata_steward; etl may
# publish as etl.pipeline only.
set -euo pipefail
[[ $# == 1 && "$1" != -* ]] || { sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; [[ "${1:-}" == -h || "${1:-}" == --help ]]; exit $?; }
DIR="$1"
mkdir -p "$DIR"
token() { openssl rand -hex 24; }
sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
REQUESTER="$(token)"; STEWARD="$(token)"; ETL="$(token)"
umask 077
cat >"$DIR/tokens.textproto" <<TOKENS
principals { name: "analyst" token_sha256: "$(sha "$REQUESTER")" tenants: "acme" }
principals { name: "steward" token_sha256: "$(sha "$STEWARD")" tenants: "acme" roles: "metadata_steward" }
principals { name: "etl" token_sha256: "$(sha "$ETL")" tenants: "acme" sources: "etl.pipeline" }
TOKENS
cat >"$DIR/tokens.env" <<TOKENS
export SLUICE_STORY_REQUESTER_TOKEN=$REQUESTER
export SLUICE_STORY_STEWARD_TOKEN=$STEWARD
export SLUICE_STORY_ETL_TOKEN=$ETL
TOKENS
