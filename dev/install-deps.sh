#!/usr/bin/env bash
# Install everything the local build and stack need. Fast and quiet when all is present:
#   1. Debian packages (apt-get only when something is missing)
#   2. Kafka 3.9.1 jars from Maven Central into .cache/kafka/libs (stamped by dev/pom.xml's sha256)
#   3. buf (npm package @bufbuild/buf) into .cache/npm
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
POM="$ROOT/dev/pom.xml"
CACHE="$ROOT/.cache"
KAFKA_LIBS="$CACHE/kafka/libs"
KAFKA_STAMP="$CACHE/kafka/libs.stamp"
M2_REPO="$CACHE/m2"
NPM_PREFIX="$CACHE/npm"
BUF_VERSION="1.75.0"
BUF="$NPM_PREFIX/node_modules/.bin/buf"

APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config mold  # mold: the linker (cmake/SluiceTargets.cmake)
  protobuf-compiler libprotobuf-dev libgrpc++-dev protobuf-compiler-grpc
  librdkafka-dev libpq-dev libabsl-dev prometheus-cpp-dev libjemalloc-dev libcurl4-openssl-dev
  libcpp-httplib-dev  # the gateway's HTTP/JSON API
  libgtest-dev libgmock-dev libbenchmark-dev
  libspdlog-dev libfmt-dev libcli11-dev libssl-dev openssl golang-github-gogo-googleapis-dev
  postgresql-15 postgresql-client-15
  openjdk-17-jdk-headless maven
  prometheus python3-yaml
  clang-14 libclang-rt-14-dev  # tests/fuzz (libFuzzer targets)
  clang-format-14 clang-tidy-14  # dev/format.sh, .clang-tidy
  mmdebstrap umoci  # image/build.sh (the container image without a container engine)
  chromium chromium-driver fonts-dejavu-core  # tests/explorer (the Explorer in a real, headless browser)
)

usage() {
  echo "usage: dev/install-deps.sh   (apt packages, Kafka jars -> .cache/kafka/libs, buf $BUF_VERSION -> .cache/npm; idempotent)"
}

die() { echo "deps: error: $*" >&2; exit 1; }

case "${1:-}" in
  -h|--help|help) usage; exit 0 ;;
  "") ;;
  *) echo "deps: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
esac

# Show the tail of a step's log when it fails.
run_logged() {
  local log="$1"; shift
  if ! "$@" >"$log" 2>&1; then
    echo "deps: error: '$*' failed; last 40 lines of $log:" >&2
    tail -n 40 "$log" >&2
    exit 1
  fi
}

step_apt() {
  local missing=() pkg
  for pkg in "${APT_PACKAGES[@]}"; do
    [[ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null)" == installed ]] || missing+=("$pkg")
  done
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    missing+=(nodejs npm)
  fi
  if (( ${#missing[@]} == 0 )); then
    echo "deps: apt ok"
    return 0
  fi
  local sudo=()
  if [[ $EUID -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "missing packages (${missing[*]}) and not root, no sudo"
    sudo=(sudo)
  fi
  echo "deps: apt installing ${missing[*]}"
  mkdir -p "$CACHE"
  run_logged "$CACHE/apt.log" "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  run_logged "$CACHE/apt.log" "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${missing[@]}"
  echo "deps: apt ok (installed ${#missing[@]})"
}

step_kafka_jars() {
  [[ -f "$POM" ]] || die "$POM not found"
  local want
  want="$(sha256sum "$POM" | cut -d' ' -f1)"
  if [[ -f "$KAFKA_STAMP" && "$(<"$KAFKA_STAMP")" == "$want" ]] \
     && compgen -G "$KAFKA_LIBS/kafka_2.13-*.jar" >/dev/null; then
    echo "deps: kafka jars ok"
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || die "mvn not found on PATH"
  command -v java >/dev/null 2>&1 || die "java not found on PATH"
  echo "deps: kafka jars downloading (Maven Central -> $KAFKA_LIBS)"
  rm -rf "$KAFKA_LIBS" "$KAFKA_STAMP"
  mkdir -p "$KAFKA_LIBS" "$M2_REPO"
  run_logged "$CACHE/kafka/mvn.log" mvn -q -B -Dstyle.color=never -f "$POM" \
    -Dmaven.repo.local="$M2_REPO" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$KAFKA_LIBS"
  compgen -G "$KAFKA_LIBS/kafka_2.13-*.jar" >/dev/null \
    || die "maven finished but no kafka_2.13 jar in $KAFKA_LIBS (see $CACHE/kafka/mvn.log)"
  echo "$want" >"$KAFKA_STAMP"
  echo "deps: kafka jars ok ($(find "$KAFKA_LIBS" -name '*.jar' | wc -l) jars)"
}

step_buf() {
  if [[ -x "$BUF" ]] && [[ "$("$BUF" --version 2>/dev/null)" == "$BUF_VERSION" ]]; then
    echo "deps: buf ok"
    return 0
  fi
  command -v npm >/dev/null 2>&1 || die "npm not found on PATH"
  echo "deps: buf installing @bufbuild/buf@$BUF_VERSION"
  mkdir -p "$NPM_PREFIX"
  run_logged "$CACHE/npm-install.log" npm install --prefix "$NPM_PREFIX" --no-audit --no-fund \
    --loglevel=error "@bufbuild/buf@$BUF_VERSION"
  [[ -x "$BUF" ]] || die "npm finished but $BUF is missing (see $CACHE/npm-install.log)"
  echo "deps: buf ok ($("$BUF" --version))"
}

step_apt
step_kafka_jars
step_buf
