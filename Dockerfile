# syntax=docker/dockerfile:1

# Build stage: the release binary, with the crate registry and target dir cached between builds.
FROM rust:1.95-bookworm AS build
WORKDIR /src
# The whole context (see .dockerignore): Cargo needs the workspace members (migration/) and
# every target directory it discovers (src/, tests/, benches/, examples/) to parse the manifest.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin authgate \
    && cp target/release/authgate /usr/local/bin/authgate

# Runtime stage: the binary, CA certificates for TLS to mail servers and PostgreSQL, a non-root user.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 authgate \
    && useradd --system --uid 10001 --gid authgate --home-dir /var/lib/authgate --create-home authgate
COPY --from=build /usr/local/bin/authgate /usr/local/bin/authgate
# The working directory is writable, so the default SQLite file (data/authgate.db) works too.
WORKDIR /var/lib/authgate
USER authgate
# Inside a container the service must listen on every interface to be reachable.
ENV AUTHGATE_LISTEN=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/authgate"]
CMD ["serve"]
