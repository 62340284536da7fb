#!/usr/bin/env bash
# One command on a fresh machine: install, build, and run `crowd up`
# (server + local agent on loopback, SQLite in ~/.local/share/crowd).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec node bin/crowd.js up "$@"
