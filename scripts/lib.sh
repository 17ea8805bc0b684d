# Helpers shared by the scripts in this directory; source it, do not run it.

# setcap, useradd and friends live in sbin, which a normal user's PATH on
# Debian leaves out.
export PATH=$PATH:/usr/sbin:/sbin

# The browser the broker's compiled-in policy runs.
CHROMIUM=/usr/lib/chromium/chromium-headless-shell

# The system user that runs the frontend when make run or make install is
# invoked as root.
SERVICE_USER=duochrome

die() {
	echo "$(basename "$0"): $*" >&2
	exit 1
}

say() {
	echo "==> $*"
}

# as_root runs a command as root: directly when we are root, else with sudo.
as_root() {
	if [[ $EUID -eq 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null; then
		sudo "$@"
	else
		die "need root or sudo to run: $*"
	fi
}

# apt_install installs Debian packages non-interactively.
apt_install() {
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
}

# frontend_user names the user that will run the frontend: the dedicated
# system user when invoked as root, the invoking user otherwise.
frontend_user() {
	if [[ $EUID -eq 0 ]]; then
		echo "$SERVICE_USER"
	else
		id -un
	fi
}
