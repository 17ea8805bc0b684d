#!/usr/bin/env bash
# Runs every Go fuzz target in the module for FUZZTIME each (default 10s):
# a short run in CI shows the targets work and catches shallow crashes;
# run longer by hand, e.g. FUZZTIME=10m scripts/fuzz.sh. A crash found is
# saved under the package's testdata/fuzz and becomes a regression test.
set -euo pipefail
cd "$(dirname "$0")/.."

go=${GO:-go}
fuzztime=${FUZZTIME:-10s}

for pkg in $($go list ./...); do
	for target in $($go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		echo "==> $pkg $target ($fuzztime)"
		$go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg"
	done
done
