# syntax=docker/dockerfile:1
#
# duochrome: the frontend (no privileges) and the broker (the only file
# with capabilities), on Debian bookworm with Chromium from Debian.
#
#   docker build -t duochrome .
#   export DUOCHROME_TOKEN="$(openssl rand -hex 32)"
#   docker run --rm -p 127.0.0.1:8080:8080 --read-only \
#     --tmpfs /tmp:size=1g,mode=1777,exec -e DUOCHROME_TOKEN \
#     --cap-drop ALL --cap-add SETUID --cap-add SETGID --cap-add KILL duochrome
#
# Kubernetes: deploy/kubernetes. Why each setting: README, "Containers".
# deploy/dockerfile_test.go checks this file; deploy/runc_test.go runs
# its layout under runc.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY cmd ./cmd
COPY internal ./internal
# The broker refuses to build with cgo (AllThreadsSyscall); the frontend
# is static too, so the runtime image needs no Go toolchain or libc match.
ENV CGO_ENABLED=0
RUN go build -trimpath -o /out/frontend ./cmd/frontend && \
    go build -trimpath -o /out/broker ./cmd/broker

FROM debian:bookworm-slim

# Chromium's headless shell, fonts for real pages, tini as PID 1, and
# setcap for one step below (removed again at the end).
RUN apt-get update && \
    apt-get install -y --no-install-recommends \
        chromium-headless-shell fonts-liberation fonts-noto-color-emoji \
        ca-certificates tini libcap2-bin && \
    rm -rf /var/lib/apt/lists/*

# The frontend's user. The broker runs as this uid too; browsers run as
# nobody (65534), or as the uid pool of /etc/duochrome/broker.json.
RUN groupadd --system --gid 10001 duochrome && \
    useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin duochrome

# The frontend finds the broker next to its own executable. Only the
# frontend's group may execute the broker; pool uids can neither read
# nor execute it.
COPY --from=build --chown=root:root --chmod=0755 /out/frontend /opt/duochrome/bin/frontend
COPY --from=build --chown=root:10001 --chmod=0750 /out/broker /opt/duochrome/bin/broker
RUN setcap cap_setuid,cap_setgid,cap_kill+ep /opt/duochrome/bin/broker

# The broker's policy: root-owned and not writable by anyone else, or
# the broker refuses it.
COPY --chown=root:root --chmod=0644 deploy/broker.json /etc/duochrome/broker.json

# Nothing may raise privileges but the broker: drop setcap, then clear
# every setuid and setgid bit (su, mount, passwd, ...).
RUN apt-get purge -y --auto-remove libcap2-bin && \
    find / -xdev -type f -perm /6000 -exec chmod ug-s {} + && \
    ! find / -xdev -type f -perm /6000 | grep .

# Read-only root: the one writable path is /tmp, for the broker's
# plugin socket and the sessions' files (mount a volume there).
VOLUME /tmp
EXPOSE 8080
USER 10001:10001
ENTRYPOINT ["/usr/bin/tini", "--", "/opt/duochrome/bin/frontend"]
# Listening beyond loopback needs a token: without DUOCHROME_TOKEN_FILE
# (a mounted secret) or DUOCHROME_TOKEN the frontend refuses to start and
# says so. --insecure-no-token opts out, for when something in front
# authenticates.
CMD ["--listen=:8080"]
