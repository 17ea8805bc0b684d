#!/usr/bin/env bash
# make run: from a fresh Debian machine to a frontend on LISTEN.
#
# Installs Chromium from Debian's packages when it is missing, installs the
# freshly built binaries into PREFIX (scripts/install.sh) and starts the
# frontend in the foreground as an unprivileged user: the system user
# "duochrome" when invoked as root, the invoking user otherwise. Needs root
# or sudo for the package install and setcap.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

prefix=${PREFIX:-/opt/duochrome}
listen=${LISTEN:-127.0.0.1:8080}
user=$(frontend_user)

if [[ ! -x "$CHROMIUM" ]]; then
	say "installing Chromium from Debian's packages"
	apt_install chromium chromium-headless-shell
fi
if ! command -v setcap >/dev/null || ! command -v setpriv >/dev/null; then
	say "installing setcap and setpriv"
	apt_install libcap2-bin util-linux
fi

scripts/install.sh "$prefix" "$user"

say "starting the frontend as $user on http://$listen (Ctrl-C stops it)"
say "try: curl -s -X POST http://$listen/sessions"
if [[ $EUID -eq 0 ]]; then
	# Drop to the service user; the bounding set stays full so that the
	# broker's file capabilities still take effect when the frontend
	# executes it.
	# --reset-env drops root's environment; the frontend's own DUOCHROME_*
	# settings (a token, timeouts) are passed on.
	mapfile -t settings < <(env | grep '^DUOCHROME_' || true)
	exec setpriv --reuid="$user" --regid="$user" --init-groups --reset-env -- \
		env "${settings[@]}" "$prefix/bin/frontend" --listen "$listen"
fi
exec "$prefix/bin/frontend" --listen "$listen"
