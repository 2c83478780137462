#!/usr/bin/env bash
# Builds the gateway clients (Python, Go, Java, Node): installs their libraries,
# generates code from proto/ and compiles the `publish` example of each.
#   clients/build.sh [LANG...]      LANG: python go java node (default: all four)
# Idempotent and quiet: one line per language. A language whose inputs (proto/, its
# own files, the toolchain version) are unchanged since its last good build is skipped.
# Downloads are cached under .cache/ (venv-clients, pip, go, m2, npm-cache).
# shellcheck disable=SC2317  # the build_* functions run through "build_$lang"
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLIENTS="$ROOT/clients"
PROTO="$ROOT/proto"
CACHE="$ROOT/.cache"
STATE="$CACHE/clients"          # build logs and stamps
VENV="$CACHE/venv-clients"
GO_MODULE="sluice.dev/sluice"   # clients/go; the protos' go_package lives under it

export PIP_CACHE_DIR="$CACHE/pip" PIP_DISABLE_PIP_VERSION_CHECK=1
export GOPATH="$CACHE/go" GOMODCACHE="$CACHE/go/pkg/mod" GOCACHE="$CACHE/go/cache" GOBIN="$CACHE/go/bin"
export GOFLAGS="-modcacherw -buildvcs=false"
export npm_config_cache="$CACHE/npm-cache" npm_config_update_notifier=false

# proto/ files, relative to $PROTO, in a stable order.
mapfile -t PROTOS < <(cd "$PROTO" && find sluice -name '*.proto' | LC_ALL=C sort)

# A digest of the named files and directories (relative to $ROOT) plus extra words.
inputs_digest() {
  local extra="$1"; shift
  {
    echo "$extra"
    (cd "$ROOT" && find "$@" -type f -not -path '*/node_modules/*' -not -path '*/target/*' \
      -not -path '*/gen/*' -not -path '*/bin/*' -not -path '*/__pycache__/*' -not -name '*.md' -print0 \
      | LC_ALL=C sort -z | xargs -0 sha256sum)
  } | sha256sum | cut -d' ' -f1
}

build_python() {
  [[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -r "$CLIENTS/python/requirements.txt" -r "$ROOT/tests/requirements.txt"
  local gen="$CLIENTS/python/gen"
  rm -rf "$gen" && mkdir -p "$gen"
  # grpc_tools.protoc adds the well-known types (google/protobuf/*.proto) itself.
  (cd "$PROTO" && "$VENV/bin/python" -m grpc_tools.protoc -I . \
    --python_out="$gen" --grpc_python_out="$gen" "${PROTOS[@]}")
  "$VENV/bin/python" -c "import sys; sys.path.insert(0, '$gen'); import sluice.v1.gateway_pb2_grpc"
}

build_go() {
  cd "$CLIENTS/go"
  go install tool   # protoc-gen-go and protoc-gen-go-grpc at the versions go.mod pins
  rm -rf gen bin
  (cd "$PROTO" && protoc -I . \
    --plugin=protoc-gen-go="$GOBIN/protoc-gen-go" --plugin=protoc-gen-go-grpc="$GOBIN/protoc-gen-go-grpc" \
    --go_out="$CLIENTS/go" --go_opt=module="$GO_MODULE" \
    --go-grpc_out="$CLIENTS/go" --go-grpc_opt=module="$GO_MODULE" "${PROTOS[@]}")
  go build -o bin/publish ./cmd/publish
}

build_java() {
  cd "$CLIENTS/java"
  # compile also writes target/classpath.txt (the runtime classpath, see pom.xml).
  mvn -q -B -Dstyle.color=never -Dmaven.repo.local="$CACHE/m2" compile
  [[ -s target/classpath.txt ]]
}

build_node() {
  cd "$CLIENTS/node"
  npm ci --prefer-offline --no-audit --no-fund --loglevel=error
  rm -rf gen && mkdir -p gen
  (cd "$PROTO" && protoc -I . --plugin=protoc-gen-es="$CLIENTS/node/node_modules/.bin/protoc-gen-es" \
    --es_out="$CLIENTS/node/gen" --es_opt=target=js,js_import_style=legacy_commonjs "${PROTOS[@]}")
  node -e "require('./gen/sluice/v1/gateway_pb.js')"
}

# Inputs whose change forces a rebuild, and outputs that must exist to skip one.
digest_of() {
  case "$1" in
    python) inputs_digest "$(python3 --version 2>&1)" proto clients/python clients/build.sh tests/requirements.txt ;;
    go)     inputs_digest "$(go version) $(protoc --version)" proto clients/go clients/build.sh ;;
    java)   inputs_digest "$(java -version 2>&1 | head -1) $(mvn -v 2>/dev/null | head -1)" proto clients/java clients/build.sh ;;
    node)   inputs_digest "$(node --version) $(protoc --version)" proto clients/node clients/build.sh ;;
  esac
}
outputs_exist() {
  case "$1" in
    python) [[ -x "$VENV/bin/python" && -f "$CLIENTS/python/gen/sluice/v1/gateway_pb2_grpc.py" ]] ;;
    go)     [[ -x "$CLIENTS/go/bin/publish" ]] ;;
    java)   [[ -s "$CLIENTS/java/target/classpath.txt" && -d "$CLIENTS/java/target/classes/dev/sluice/examples" ]] ;;
    node)   [[ -d "$CLIENTS/node/node_modules/@grpc/grpc-js" && -f "$CLIENTS/node/gen/sluice/v1/gateway_pb.js" ]] ;;
  esac
}

langs=("$@")
(( ${#langs[@]} )) || langs=(python go java node)
mkdir -p "$STATE"
failed=0
for lang in "${langs[@]}"; do
  case "$lang" in python|go|java|node) ;; *) echo "clients: unknown language '$lang'" >&2; exit 2 ;; esac
  stamp="$STATE/$lang.stamp" log="$STATE/$lang.log"
  want="$(digest_of "$lang")"
  if [[ -f "$stamp" && "$(<"$stamp")" == "$want" ]] && outputs_exist "$lang"; then
    echo "clients: $lang ok (up to date)"
    continue
  fi
  rm -f "$stamp"
  start=$SECONDS
  set +e
  ( set -e; "build_$lang" ) >"$log" 2>&1
  rc=$?
  set -e
  if (( rc == 0 )); then
    echo "$want" >"$stamp"
    echo "clients: $lang ok ($((SECONDS - start))s)"
  else
    echo "clients: $lang FAILED (exit $rc); last 40 lines of $log:" >&2
    tail -n 40 "$log" >&2
    failed=1
  fi
done
exit "$failed"
