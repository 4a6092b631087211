# syntax=docker/dockerfile:1.7
# One image per service, from this one file:
#   docker build --build-arg SERVICE=identity -t mcr-identity:dev .
# SERVICE is the folder under services/ (identity, patient-index, consent,
# record-aggregator, audit); the image runs /usr/local/bin/mcr-$SERVICE.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS builder
ARG SERVICE
WORKDIR /build
COPY . .
# Cache mounts keep the registry and the target directory between builds, so
# a rebuild after a source change recompiles only the workspace's crates.
# protoc is vendored (protoc-bin-vendored): nothing to install.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/build/target,sharing=locked \
    test -n "${SERVICE}" || { echo "build with --build-arg SERVICE=<service>" >&2; exit 1; } \
    && test -d "services/${SERVICE}" \
    && cargo build --release --locked -p "mcr-${SERVICE}" --bin "mcr-${SERVICE}" \
    && install -D -m 0755 "target/release/mcr-${SERVICE}" "/out/mcr-${SERVICE}" \
    && ln -s "mcr-${SERVICE}" /out/mcr-service

# glibc and libgcc only, no shell or package manager; runs as uid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
ARG SERVICE
LABEL org.opencontainers.image.title="mcr-${SERVICE}" \
      org.opencontainers.image.source="https://github.com/my-care-record/my-care-record" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/ /usr/local/bin/
USER 65532:65532
# Nothing is written outside /tmp, so the root filesystem may be read-only.
WORKDIR /tmp
ENV MCR_TELEMETRY__LOG_FORMAT=json
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/mcr-service"]
