#!/usr/bin/env bash
# Usage: scripts/install.sh [PREFIX [USER]]
#
# Installs bin/frontend and bin/broker into PREFIX (default /opt/duochrome):
#
#   PREFIX/bin/frontend  root:root   0755  no capabilities
#   PREFIX/bin/broker    root:GROUP  0750  cap_setuid,cap_setgid,cap_kill+ep
#
# GROUP is the primary group of USER, who will run the frontend (default:
# the system user "duochrome", created here, when run as root, else the
# invoking user). Only that group may execute the broker: the pool uids
# that run Chromium (nobody by default) can neither read nor execute it.
# Needs root; uses sudo when not root.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

prefix=${1:-/opt/duochrome}
user=${2:-$(frontend_user)}

# Everything below needs root; come back through sudo, keeping the user.
if [[ $EUID -ne 0 ]]; then
	command -v sudo >/dev/null || die "installing needs root or sudo"
	exec sudo "$0" "$prefix" "$user"
fi

[[ -x bin/frontend && -x bin/broker ]] || die "bin/ is empty: run make build first"
[[ "$user" != root ]] || die "the frontend must not run as root; name another user"
[[ "$user" != nobody ]] || die "nobody runs Chromium; the frontend needs its own user"
command -v setcap >/dev/null || die "setcap is missing: apt-get install libcap2-bin"

create_service_user() {
	getent passwd "$SERVICE_USER" >/dev/null && return
	say "creating system user $SERVICE_USER (no login shell, no home)"
	useradd --system --user-group --no-create-home \
		--home-dir /nonexistent --shell /usr/sbin/nologin "$SERVICE_USER"
}

# File capabilities are ignored on a nosuid mount, and setcap needs xattrs.
check_mount() {
	local opts
	opts=$(findmnt -n -o OPTIONS -T "$1")
	if [[ ",$opts," == *,nosuid,* ]]; then
		die "$1 is on a nosuid mount: the broker's file capabilities would be ignored; choose another PREFIX"
	fi
}

if [[ "$user" == "$SERVICE_USER" ]]; then
	create_service_user
fi
group=$(id -gn "$user")

install -d -o root -g root -m 0755 "$prefix" "$prefix/bin"
check_mount "$prefix/bin"

say "installing $prefix/bin/frontend (root:root 0755)"
install -o root -g root -m 0755 bin/frontend "$prefix/bin/frontend"

say "installing $prefix/bin/broker (root:$group 0750, cap_setuid,cap_setgid,cap_kill+ep)"
install -o root -g "$group" -m 0750 bin/broker "$prefix/bin/broker"
setcap cap_setuid,cap_setgid,cap_kill+ep "$prefix/bin/broker"
getcap "$prefix/bin/broker"
