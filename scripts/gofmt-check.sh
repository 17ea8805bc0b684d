#!/usr/bin/env bash
# Fails, naming the files, when any Go file is not gofmt-formatted.
set -euo pipefail

unformatted=$(gofmt -l .)
if [[ -n "$unformatted" ]]; then
	echo "gofmt: these files need formatting (run gofmt -w on them):" >&2
	echo "$unformatted" >&2
	exit 1
fi
