# syntax=docker/dockerfile:1
# The Sluice image: the seven binaries in /usr/local/bin and the migrations, catalog and
# golden vectors in /usr/local/share/sluice, on Debian 12 with only the runtime libraries.
# The Kubernetes manifests (k8s/base) run it as ghcr.io/sluice/sluice:<tag>.
#
#   docker build -t ghcr.io/sluice/sluice:0.1.0 .
#
# Not built by this repository's own checks: the development machine has no container
# engine. image/build.sh makes the same runtime image without one (mmdebstrap + umoci,
# an OCI archive in build/sluice-image.oci.tar) and tests/image_test.sh runs that image.
# Keep the two in step: both install image/runtime-packages.txt on a minimal bookworm
# (debian:bookworm-slim here, mmdebstrap --variant=minbase there, with the same
# docs/man/locale path-excludes), create user and group 65532 "sluice" the same way and
# copy `cmake --install --prefix /usr/local --strip`. See image/README.md.

# --- build: Release, only the seven installed targets (no tests, no benchmarks) ---------
FROM debian:bookworm AS build
# Build dependencies: the compiler and library part of dev/install-deps.sh's list. GTest
# and GMock are needed to configure (cmake/SluiceDeps.cmake finds them unconditionally),
# not to build the targets below.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config \
      protobuf-compiler libprotobuf-dev libgrpc++-dev protobuf-compiler-grpc \
      librdkafka-dev libpq-dev libabsl-dev prometheus-cpp-dev libjemalloc-dev libcurl4-openssl-dev libcpp-httplib-dev \
      libgtest-dev libgmock-dev \
      libspdlog-dev libfmt-dev libcli11-dev libssl-dev golang-github-gogo-googleapis-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# SLUICE_BUILD_INTEGRATION=OFF drops the stack-dependent tests; building only the seven
# targets skips the unit tests and benchmarks as well. --strip: no debug info in the image.
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DSLUICE_BUILD_INTEGRATION=OFF \
 && cmake --build /build -j2 --target \
      sluice-gateway sluice-relay sluice-scheduler sluice-profiler sluice-audit sluice-triggers sluicectl \
 && cmake --install /build --prefix /usr/local --strip

# --- runtime ---------------------------------------------------------------------------
FROM debian:bookworm-slim
# Only the shared libraries the binaries load (`ldd`), from image/runtime-packages.txt;
# their dependencies come along. No recommends, no package lists left behind.
RUN --mount=type=bind,source=image/runtime-packages.txt,target=/tmp/runtime-packages.txt \
    apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      $(sed 's/#.*//' /tmp/runtime-packages.txt) \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/* /var/cache/debconf/*-old /var/lib/dpkg/*-old \
 && groupadd --system --gid 65532 sluice \
 && useradd --system --uid 65532 --gid 65532 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin sluice
# Owned by root: the service user can read and run them, not change them.
COPY --from=build /usr/local/bin/ /usr/local/bin/
COPY --from=build /usr/local/share/sluice/ /usr/local/share/sluice/

# Runs with a read-only root filesystem (k8s: readOnlyRootFilesystem, an emptyDir on /tmp).
# No service writes files: logs go to stdout/stderr, the catalog is compiled in, the
# migrations and vectors are only read; the only file sluicectl writes is the one
# `replay --output FILE` names. HOME=/nonexistent, so libpq finds no ~/.pgpass or
# ~/.postgresql and takes everything from the DSN. tests/image_test.sh runs the image's
# binaries on a read-only mount as UID 65532.
# No ENTRYPOINT or CMD: each pod names its binary in exec form (command:
# ["/usr/local/bin/sluice-gateway"]), so nothing runs through a shell.
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
WORKDIR /
USER 65532:65532
LABEL org.opencontainers.image.title="sluice" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.description="Sluice services and sluicectl (Debian 12)"
