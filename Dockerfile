# Portcullis in a container: the same binary, paths and user as the Debian package
# (deploy/portcullis.service). Build with `docker build -t portcullis .`; run with
#
#   docker run -p 8080:8080 -v portcullis-data:/var/lib/portcullis portcullis
#
# The first start writes the generated admin token to /var/lib/portcullis/admin-token
# (stderr is not a terminal): `docker exec <container> cat /var/lib/portcullis/admin-token`.
# Or pass -e PORTCULLIS_ADMIN_TOKEN=... (at least 32 characters) and nothing is generated.

FROM rust:1-trixie AS build
# The commit /metrics reports (portcullis_build_info); .git is not copied into the image:
#   docker build --build-arg PORTCULLIS_BUILD_COMMIT=$(git rev-parse --short HEAD) -t portcullis .
ARG PORTCULLIS_BUILD_COMMIT=unknown
ENV PORTCULLIS_BUILD_COMMIT=$PORTCULLIS_BUILD_COMMIT
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p portcullis \
 && mkdir -p /out \
 && cp target/release/portcullis /out/portcullis \
 && strip /out/portcullis \
 && /out/portcullis config default \
    | sed 's|^# data_dir = .*$|data_dir = "/var/lib/portcullis"|' > /out/portcullis.toml \
 && grep -qx 'data_dir = "/var/lib/portcullis"' /out/portcullis.toml

FROM debian:trixie-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --user-group --home-dir /var/lib/portcullis --no-create-home \
      --shell /usr/sbin/nologin portcullis \
 && install -d -o portcullis -g portcullis -m 0700 /var/lib/portcullis
COPY --from=build /out/portcullis /usr/bin/portcullis
COPY --from=build /out/portcullis.toml /etc/portcullis/portcullis.toml
USER portcullis
WORKDIR /var/lib/portcullis
VOLUME /var/lib/portcullis
# Inside the container, every interface: the port is published with -p.
ENV PORTCULLIS_LISTEN=0.0.0.0:8080
# The settings file for every command, not only serve: `docker exec portcullis portcullis
# admin create …` then works on the server's own data directory.
ENV PORTCULLIS_CONFIG=/etc/portcullis/portcullis.toml
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/readyz >/dev/null || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/portcullis"]
CMD ["serve", "--config", "/etc/portcullis/portcullis.toml"]
