#!/usr/bin/env bash
# Proves the contract gate (dev/check-contracts.sh) bites: in a scratch git repository
# holding a copy of proto/, buf.yaml and the gate, with its first commit as the baseline,
#   (c) the unmodified tree passes,
#   (a) a renumbered Envelope field fails, and the output names the field and its number,
#   (b) a new field with a fresh number passes,
#   (d) a shallow clone without the baseline fails and says `git fetch --unshallow`.
# buf missing is a failure, not a skip: without buf the gate checks nothing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=dev/env.sh
source "$ROOT/dev/env.sh"

fail() { echo "contract_gate_test: FAIL: $*" >&2; exit 1; }
command -v buf >/dev/null 2>&1 || fail "buf not found (run: bash dev/install-deps.sh)"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
REPO="$WORK/repo"
ENVELOPE="proto/sluice/v1/envelope.proto"

# Isolated from the user's git configuration (signing, hooks, templates).
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
git_() { git -C "$REPO" -c user.name=gate -c user.email=gate@localhost -c commit.gpgsign=false "$@"; }

mkdir -p "$REPO/dev"
cp -R "$ROOT/proto" "$ROOT/buf.yaml" "$REPO/"
cp "$ROOT/dev/check-contracts.sh" "$ROOT/dev/env.sh" "$REPO/dev/"
git_ init -q
git_ add -A
git_ commit -q -m baseline
baseline="$(git_ rev-parse HEAD)"
printf '# test baseline\n%s\n' "$baseline" >"$REPO/proto/BASELINE"
git_ commit -q -am "record baseline"
cp "$REPO/$ENVELOPE" "$WORK/envelope.orig"

# Runs the gate in $1; its combined output lands in $WORK/out, its exit status is returned.
gate() { (cd "$1" && bash dev/check-contracts.sh) >"$WORK/out" 2>&1; }
show() { sed 's/^/  | /' "$WORK/out" >&2; }

# (c) Unmodified tree.
gate "$REPO" || { show; fail "(c) the unmodified tree does not pass the gate"; }
echo "ok (c) unmodified tree passes"

# (a) Renumber Envelope.type 2 -> 12 (12 is unused): field 2 disappears from the wire.
sed -i 's/^\(  string type = \)2;/\112;/' "$REPO/$ENVELOPE"
grep -q '^  string type = 12;' "$REPO/$ENVELOPE" || fail "(a) could not renumber Envelope.type in $ENVELOPE"
if gate "$REPO"; then show; fail "(a) the gate passed a renumbered field (Envelope.type 2 -> 12)"; fi
grep -q 'field "2" with name "type" on message "Envelope"' "$WORK/out" \
  || { show; fail "(a) the gate failed, but its output does not name field 2 \"type\" of Envelope"; }
echo "ok (a) renumbered field fails: $(grep -m1 'field "2"' "$WORK/out")"

# (b) Restore, then add a field with a fresh number.
cp "$WORK/envelope.orig" "$REPO/$ENVELOPE"
sed -i 's/^\(  map<string, string> metadata = 11;\)$/\1\n  string gate_test_note = 12;/' "$REPO/$ENVELOPE"
grep -q '^  string gate_test_note = 12;' "$REPO/$ENVELOPE" || fail "(b) could not add a field to $ENVELOPE"
gate "$REPO" || { show; fail "(b) the gate rejected a new field with a fresh number"; }
echo "ok (b) new field with a fresh number passes"
cp "$WORK/envelope.orig" "$REPO/$ENVELOPE"

# (d) A depth-1 clone holds only the "record baseline" commit, not the baseline itself.
git clone -q --depth 1 "file://$REPO" "$WORK/shallow"
if gate "$WORK/shallow"; then show; fail "(d) the gate passed in a shallow clone without the baseline"; fi
grep -q 'git fetch --unshallow' "$WORK/out" || { show; fail "(d) no 'git fetch --unshallow' hint"; }
git -C "$WORK/shallow" fetch -q --unshallow
gate "$WORK/shallow" || { show; fail "(d) the gate still fails after git fetch --unshallow"; }
echo "ok (d) shallow clone fails with the unshallow hint, passes after unshallowing"

echo "contract_gate_test: all passed"
