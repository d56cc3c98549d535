#!/usr/bin/env bash
# test/slow/build_fuzz.sh [OUT]: builds the libFuzzer target fuzz_parse
# (src/llm_parse.c + fuzz_shim.c, clang -fsanitize=fuzzer,address,undefined).
# libcjson and libpgcommon are linked as Debian ships them (not
# instrumented); llm_parse.c, where our own scanners live, is.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$here/../../src
out=${1:-$here/fuzz_parse}
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
pginc=$($PG_CONFIG --includedir-server)
CC=${CC:-clang-14}
cflags=(-g -O1 -std=gnu11 -fno-omit-frame-pointer -fno-strict-aliasing -fwrapv
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
	-Wall -Werror -Wno-unused-parameter -Wno-unused-command-line-argument -Wno-ignored-attributes
	-I"$src" -I"$here" -I"$pginc")
$CC "${cflags[@]}" -o "$out" "$here/fuzz_parse.c" "$here/fuzz_shim.c" "$src/llm_parse.c" \
	/usr/lib/postgresql/15/lib/libpgcommon.a /usr/lib/postgresql/15/lib/libpgport.a -lcjson -lm
echo "$out"
