# Nudge in a container: a build stage with the Rust toolchain, a slim runtime stage
# with the binary alone, run as a user without privileges.
#
#   docker build -t nudge .
#   docker run -p 8080:8080 -v nudge-data:/var/lib/nudge nudge
#
# scripts/package-check runs this file's steps outside Docker (CI has no registry):
# the build, the install into the runtime layout, the ENV below, the non-root user,
# the HEALTHCHECK command and the STOPSIGNAL. Keep the two in step.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
# Pure-Rust TLS and SQLite built from the bundled C source: gcc is in the image, no
# other system library is needed.
RUN cargo build --release --locked -p nudge \
 && install -D -m 0755 target/release/nudge /out/usr/local/bin/nudge

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/nudge --create-home --shell /usr/sbin/nologin nudge
COPY --from=build /out/ /
USER 10001:10001
# MALLOC_ARENA_MAX=2: glibc keeps fewer per-thread heaps of freed memory (a third less
# RSS in the soak benchmark; docs/operations.md, "Soak").
ENV NUDGE_LISTEN=0.0.0.0:8080 \
    NUDGE_DATA_DIR=/var/lib/nudge \
    NUDGE_LOG_FORMAT=json \
    MALLOC_ARENA_MAX=2
VOLUME ["/var/lib/nudge"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 CMD ["nudge", "health"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["nudge"]
CMD ["serve"]
