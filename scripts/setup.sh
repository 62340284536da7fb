#!/usr/bin/env bash
# Installs what crowdcloud runs and tests with (Debian packages, npm
# dependencies) and builds it. Idempotent; needs root (or sudo) for apt.
set -euo pipefail
cd "$(dirname "$0")/.."
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
mapfile -t pkgs < <(grep -v '^\s*#' scripts/debian-packages.txt | grep -v '^\s*$')
missing=()
for p in "${pkgs[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -q
  # slapd asks questions on install; answer none of them.
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# QEMU drops to this user when the agent runs as root (least privilege).
if [ "$(id -u)" -eq 0 ] && ! id crowd-qemu >/dev/null 2>&1; then
  useradd --system --no-create-home --shell /usr/sbin/nologin crowd-qemu
fi
npm ci --no-audit --no-fund
npm run build
