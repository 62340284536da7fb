#!/usr/bin/env bash
# Runs every test: unit tests beside the code, then test/ (e2e included).
# Usage: scripts/test.sh [file-or-dir ...]   (default: src test)
set -euo pipefail
cd "$(dirname "$0")/.."
# The whole suite also typechecks; a subset (arguments given) does not.
[ "$#" -gt 0 ] || npx tsc -p tsconfig.json --noEmit
mapfile -t files < <(find ${@:-src test} -name '*.test.ts' -not -path '*/node_modules/*' | sort)
if [ "${#files[@]}" -eq 0 ]; then echo "no test files found" >&2; exit 1; fi
exec node --import tsx --test --test-reporter=spec --test-concurrency="${TEST_CONCURRENCY:-2}" "${files[@]}"
