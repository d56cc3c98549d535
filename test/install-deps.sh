#!/usr/bin/env bash
# test/install-deps.sh: every Debian 12 package samplellm's build, tests and
# demo need.  Idempotent; run as root.
set -euo pipefail
pkgs=(build-essential postgresql-15 postgresql-server-dev-15 libcurl4-openssl-dev
      libcjson-dev libopenblas-dev libopenblas0-serial pkg-config python3 ca-certificates)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "== installing: ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian starts a default cluster on install; the scripts use their own.
