#!/usr/bin/env bash
# test/deb.sh: builds the Debian package postgresql-15-samplellm from this
# tree with postgresql-common's helpers (debian/: dh --with pgxs_loop,
# pg_buildext), checks what it holds, installs it into $PG_BIN's PostgreSQL
# tree and runs the quick suite (test/run.sh with SL_INSTALLED=1) against
# the installed files only.
#
# Usage: bash test/deb.sh [--build-only]
#   DEB_OUT   where the .deb goes (default: dist/ in this tree)
#   PG_BIN    the PostgreSQL 15 whose tree receives the package's files
#             (default /usr/lib/postgresql/15/bin, the system's)
#
# The package is built in a scratch copy of the tracked files (as they are
# in the work tree, committed or not), so the tree itself gets no build
# debris.  The check installs the package with `dpkg-deb -x` into the
# root above $PG_BIN (/ for the system PostgreSQL, /opt/pg-x for a private
# copy laid out like it), after removing every samplellm file a
# `make install` left there: the suite then sees the package's files and
# nothing else.  On a real machine, install it with
#   apt install ./dist/postgresql-15-samplellm_0.2.0-1_amd64.deb
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
build_only=
[ "${1:-}" = "--build-only" ] && build_only=1

# The packaging tools (Debian 12): debhelper, postgresql-common's PGXS
# helpers (postgresql-server-dev-all), and the build dependencies.
need=(dpkg-dev debhelper fakeroot postgresql-server-dev-all postgresql-server-dev-15
      libcurl4-openssl-dev libcjson-dev libopenblas-dev libopenblas0-serial pkg-config)
missing=()
for p in "${need[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	[ "$(id -u)" -eq 0 ] || { echo "test/deb.sh: missing ${missing[*]}: apt-get install them (as root)" >&2; exit 1; }
	sl_log "installing ${missing[*]}"
	apt-get update -qq >/dev/null
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

version=$(dpkg-parsechangelog -l "$SL_ROOT/debian/changelog" -S Version)
upstream=${version%-*}
arch=$(dpkg --print-architecture)
deb=postgresql-15-samplellm_${version}_${arch}.deb
out=${DEB_OUT:-$SL_ROOT/dist}
mkdir -p "$out"

scratch=$(mktemp -d /tmp/samplellm-deb.XXXXXX)
cleanup() { rm -rf "$scratch"; }
trap cleanup EXIT
src=$scratch/samplellm-$upstream
mkdir "$src"
(cd "$SL_ROOT" && git ls-files -z --cached --others --exclude-standard |
	while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
	tar --null -T - -cf -) | tar -xf - -C "$src"

sl_log "building $deb (dpkg-buildpackage -b, log: $out/deb-build.log)"
t0=$(date +%s)
if ! (cd "$src" && dpkg-buildpackage -b -us -uc) >"$out/deb-build.log" 2>&1; then
	tail -40 "$out/deb-build.log" >&2
	echo "FAIL: dpkg-buildpackage (see $out/deb-build.log)" >&2
	exit 1
fi
cp "$scratch/$deb" "$out/"
sl_log "built $out/$deb in $(( $(date +%s) - t0 )) s"

# What the package holds and what it asks for.
status=0
check() {	# check <description> <command...>
	local what=$1; shift
	if "$@"; then echo "ok   $what"; else echo "FAIL $what"; status=1; fi
}
fields=$(dpkg-deb -f "$out/$deb" Package Version Depends)
contents=$(dpkg-deb -c "$out/$deb" | awk '{print $6}')
echo "$fields"
check "package name and version" grep -qx "Package: postgresql-15-samplellm" <<<"$fields"
check "version $version" grep -qx "Version: $version" <<<"$fields"
for dep in postgresql-15 libcurl4 libcjson1 libopenblas0-serial; do
	check "depends on $dep" grep -qE "(: |, )$dep( |,|$)" <<<"$fields"
done
sharedir=./usr/share/postgresql/15/extension
for f in ./usr/lib/postgresql/15/lib/samplellm.so $sharedir/samplellm.control \
	$(cd "$SL_ROOT" && for s in samplellm--*.sql; do echo "$sharedir/$s"; done) \
	./usr/share/doc/postgresql-15-samplellm/copyright; do
	check "holds $f" grep -qx "$f" <<<"$contents"
done
check "no file outside PostgreSQL 15's folders, the docs and lintian's" \
	bash -c '! grep -vE "^\./(\$|usr/\$|usr/(lib|share)/\$|usr/lib/postgresql/|usr/share/postgresql/|usr/share/doc/|usr/share/lintian/)" <<<"$1"' _ "$contents"
if command -v lintian >/dev/null; then
	sl_log "lintian (informational)"
	lintian --tag-display-limit 0 "$out/$deb" || true
fi
[ -n "$build_only" ] && exit $status

# Install: the package's files replace whatever `make install` left.
root=$(cd "$PG_BIN/../../../../.." && pwd)
pkglib=$("$PG_CONFIG" --pkglibdir)
ext=$("$PG_CONFIG" --sharedir)/extension
if [ "$root/usr/lib/postgresql/15/lib" != "$pkglib" ]; then
	echo "test/deb.sh: $PG_CONFIG's tree ($pkglib) is not laid out as the package expects" >&2
	exit 1
fi
if [ "$root" = / ] && [ -z "${SL_DEB_SYSTEM:-}" ]; then
	echo "test/deb.sh: PG_BIN is the system PostgreSQL; set SL_DEB_SYSTEM=1 to install into it" \
		"(or apt install $out/$deb), or point PG_BIN at a private copy" >&2
	exit 1
fi
sl_log "installing the package's files into $root (dpkg-deb -x)"
rm -rf "$pkglib/samplellm.so" "$pkglib/bitcode/samplellm" "$pkglib/bitcode/samplellm.index.bc" \
	"$ext"/samplellm.control "$ext"/samplellm--*.sql
dpkg-deb -x "$out/$deb" "$root"
check "installed samplellm.so is the package's" \
	cmp -s "$pkglib/samplellm.so" <(dpkg-deb --fsys-tarfile "$out/$deb" | tar -xOf - ./usr/lib/postgresql/15/lib/samplellm.so)

sl_log "the quick suite against the installed package (SL_INSTALLED=1 test/run.sh)"
SL_INSTALLED=1 bash "$here/run.sh" || status=1
[ $status -eq 0 ] && echo "PASS test/deb.sh: $deb built, installed and tested" || echo "FAIL test/deb.sh"
exit $status
