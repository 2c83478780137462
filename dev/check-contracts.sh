#!/usr/bin/env bash
# Contract gate: `buf lint`, then `buf breaking` of the working tree's proto/ against the
# baseline commit in proto/BASELINE (buf.yaml's FILE rules: no deleted or renumbered field,
# no changed type, ...). Exits non-zero on any finding, or when the baseline commit is not
# in this clone's history. Needs buf (dev/install-deps.sh puts it under .cache/npm).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
case "${1:-}" in
  -h|--help) sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  "") ;;
  *) echo "contracts: takes no arguments" >&2; exit 2 ;;
esac

die() { echo "contracts: error: $*" >&2; exit 1; }

# shellcheck source=dev/env.sh
source dev/env.sh
command -v buf >/dev/null 2>&1 || die "buf not found on PATH or in .cache/npm; run: bash dev/install-deps.sh"

BASELINE_FILE="proto/BASELINE"
[[ -f "$BASELINE_FILE" ]] || die "$BASELINE_FILE not found"
# The first line that is neither a comment nor blank.
baseline="$(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$BASELINE_FILE" | grep -m1 . || true)"
[[ "$baseline" =~ ^[0-9a-f]{40}$ ]] \
  || die "$BASELINE_FILE must hold one full 40-hex-digit commit sha, found '${baseline}'"

git rev-parse --git-dir >/dev/null 2>&1 || die "$ROOT is not a git checkout: the baseline is read from git history"
if ! git cat-file -e "${baseline}^{commit}" 2>/dev/null; then
  if [[ "$(git rev-parse --is-shallow-repository)" == true ]]; then
    die "baseline commit $baseline (from $BASELINE_FILE) is not in this clone's history: the clone is shallow.
Fix: git fetch --unshallow   (or clone without --depth)"
  fi
  die "baseline commit $baseline (from $BASELINE_FILE) is not in this repository's history.
Fix: git fetch origin (the commit may be on a branch not fetched yet), or correct $BASELINE_FILE"
fi

echo "contracts: buf $(buf --version), baseline $baseline"
buf lint
echo "contracts: buf lint clean"
# Run from the root: buf.yaml (v2) there names the module (proto/) and the breaking rules.
if ! buf breaking --against ".git#ref=$baseline"; then
  die "wire-incompatible change to proto/ since $baseline (above). Restore the field/number,
or reserve it and add a new field; see proto/README.md"
fi
echo "contracts: no breaking change since $baseline"
