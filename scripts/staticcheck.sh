#!/usr/bin/env bash
# Runs staticcheck when it is installed (on PATH or in $(go env GOPATH)/bin);
# says so and succeeds when it is not, since it is not a build dependency.
set -euo pipefail

bin=$(command -v staticcheck || true)
if [[ -z "$bin" ]]; then
	candidate="$(go env GOPATH)/bin/staticcheck"
	[[ -x "$candidate" ]] && bin=$candidate
fi
if [[ -z "$bin" ]]; then
	echo "staticcheck: not installed, skipped" \
		"(go install honnef.co/go/tools/cmd/staticcheck@latest)"
	exit 0
fi
"$bin" ./...
