# Caddy with caddy-idv, built with the official xcaddy pattern: a builder
# stage on Caddy's builder image compiles Caddy with the module from this
# repository, then Caddy's own image (volumes /data and /config, Caddyfile at
# /etc/caddy/Caddyfile) receives the binary and runs it as a non-root user.
#
#   docker build -t caddy-idv .
#   docker run -p 80:80 -p 443:443 -v caddy_data:/data -v caddy_config:/config \
#       -v "$PWD/Caddyfile:/etc/caddy/Caddyfile:ro" caddy-idv
#
# Keep CADDY_VERSION equal to the Caddy version in go.mod.
ARG CADDY_VERSION=2.11.9

FROM caddy:${CADDY_VERSION}-builder AS builder
# go.mod may need a newer Go than the builder image has; let go fetch it.
ENV GOTOOLCHAIN=auto
COPY . /src
# The module is given with its version (the Version constant) and replaced
# by /src: without a version, xcaddy would look the module up at the Go
# module proxy instead of using the copy (see scripts/xcaddy-build.sh).
# xcaddy builds the Caddy version of the image (its CADDY_VERSION).
RUN version="$(sed -n 's/^const Version = "\(.*\)"$/\1/p' /src/caddyidv.go)" \
	&& test -n "$version" \
	&& xcaddy build --with "github.com/caddy-idv/caddy-idv@v${version}=/src" --output /usr/bin/caddy \
	&& /usr/bin/caddy list-modules | grep -qx 'http.handlers.idv'

FROM caddy:${CADDY_VERSION}
COPY --from=builder /usr/bin/caddy /usr/bin/caddy
# A non-root user owns what Caddy writes: certificates, keys and caddy-idv's
# shared store live under /data (XDG_DATA_HOME), autosaved config under
# /config. Named volumes start with this ownership; for a bind mount, chown
# the host directory to 10001:10001. (Build with BuildKit, the default since
# Docker Engine 23: the legacy builder drops changes to directories the base
# image declares as volumes.) The capability lets the non-root binary listen
# on :80 and :443; without it, listen on ports above 1023.
RUN addgroup -S -g 10001 caddy \
	&& adduser -S -D -H -u 10001 -G caddy -h /data caddy \
	&& mkdir -p /data/caddy /config/caddy \
	&& chown -R caddy:caddy /data /config \
	&& setcap cap_net_bind_service=+ep /usr/bin/caddy
USER caddy
