#!/usr/bin/env bash
# Format the C++ sources with clang-format-14 and the repository's .clang-format.
#   dev/format.sh [FILE...]           rewrite files in place
#   dev/format.sh --check [FILE...]   change nothing; list the files that need formatting, exit 1 if any
# Without FILE arguments: every *.cc and *.h that git tracks (so build trees, .cache/ and generated
# code are never touched; *.cc.in templates are left alone).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLANG_FORMAT=clang-format-14  # pinned: other versions format some constructs differently

usage() { sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; }

check=false
files=()
for arg in "$@"; do
  case "$arg" in
    --check) check=true ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "format: unknown option '$arg'" >&2; usage >&2; exit 2 ;;
    *) files+=("$arg") ;;
  esac
done

if ! command -v "$CLANG_FORMAT" >/dev/null 2>&1; then
  echo "format: $CLANG_FORMAT not found; install it with: bash dev/install-deps.sh" >&2
  exit 2
fi
[[ -f "$ROOT/.clang-format" ]] || { echo "format: $ROOT/.clang-format is missing" >&2; exit 2; }

cd "$ROOT"
if (( ${#files[@]} == 0 )); then
  # Tracked files that still exist (a file deleted in the working tree is skipped).
  while IFS= read -r -d '' f; do
    if [[ -f "$f" ]]; then files+=("$f"); fi
  done < <(git ls-files -z -- '*.cc' '*.h')
fi

# --fallback-style=none: never format with a built-in style if .clang-format cannot be read.
fmt=("$CLANG_FORMAT" --style=file --fallback-style=none)

if ! $check; then
  (( ${#files[@]} == 0 )) || printf '%s\0' "${files[@]}" | xargs -0 -n 50 "${fmt[@]}" -i
  echo "format: ${#files[@]} files formatted"
  exit 0
fi

tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT
bad=()
for f in "${files[@]}"; do
  "${fmt[@]}" "$f" >"$tmp" || { echo "format: $CLANG_FORMAT failed on $f" >&2; exit 2; }
  cmp -s "$tmp" "$f" || bad+=("$f")
done
if (( ${#bad[@]} > 0 )); then
  printf '%s\n' "${bad[@]}"
  echo "format: ${#bad[@]} of ${#files[@]} files need formatting; run: bash dev/format.sh" >&2
  exit 1
fi
echo "format: ${#files[@]} files ok"
