#!/usr/bin/env bash
# test/slow/build_fuzz.sh [OUTDIR]: builds the libFuzzer targets fuzz_parse
# (src/llm_parse.c: a response body -> rows) and fuzz_stream
# (src/llm_stream.c: server-sent events -> a body -> rows), with
# fuzz_check.c and fuzz_shim.c, clang -fsanitize=fuzzer,address,undefined.
# libcjson and libpgcommon are linked as Debian ships them (not
# instrumented); our own scanners and parsers are.  Prints the two paths.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$here/../../src
out=${1:-$here}
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
pginc=$($PG_CONFIG --includedir-server)
pglib=$($PG_CONFIG --pkglibdir)
CC=${CC:-clang-14}
cflags=(-g -O1 -std=gnu11 -D_GNU_SOURCE -fno-omit-frame-pointer -fno-strict-aliasing -fwrapv
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
	-Wall -Werror -Wno-unused-parameter -Wno-unused-command-line-argument -Wno-ignored-attributes
	-I"$src" -I"$here" -I"$pginc")
libs=("$pglib/libpgcommon.a" "$pglib/libpgport.a" -lcjson -lm)
$CC "${cflags[@]}" -o "$out/fuzz_parse" "$here/fuzz_parse.c" "$here/fuzz_check.c" \
	"$here/fuzz_shim.c" "$src/llm_parse.c" "${libs[@]}"
$CC "${cflags[@]}" -o "$out/fuzz_stream" "$here/fuzz_stream.c" "$here/fuzz_check.c" \
	"$here/fuzz_shim.c" "$src/llm_stream.c" "$src/llm_parse.c" "${libs[@]}"
echo "$out/fuzz_parse"
echo "$out/fuzz_stream"
