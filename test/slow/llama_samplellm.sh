# test/slow/llama_samplellm.sh: samplellm against the real engine (issue 16),
# sourced by test/slow/llama.sh with its server up (LLAMA_URL, LLAMA_PORT,
# LLAMA_TIMING, LLAMA_LOG; pass / fail / figure).  A throwaway cluster of
# test/lib.sh; the extension with DEFAULT settings but the endpoint; a table
# whose columns a grammar keeps valid (varchar(n), an enum, a date, a
# boolean: node-llama-cpp's integer rule admits exponents, which the
# validator would reject and only slow the call down).
# Shows: a default-settings call completes; retries = 0; requests in flight
# converge to the server's slots; cancel mid-generation ends the call within
# 1 s and the server stops generating; every row is valid.  Prints rows/s,
# tokens/s and requests in flight over time.
# Knobs: LLAMA_ROWS (5: rows asked), LLAMA_CALL_LIMIT (1500 s: a safety net
# around the call; statement_timeout stays at its default), LLAMA_AIMD (1: a
# second call without capacity discovery, to see the window learn the slot).

samplellm_checks() {
	. "$here/../lib.sh"
	local rows=${LLAMA_ROWS:-5} out t0 t1 secs seq0 rec
	sl_build_install || { fail "samplellm: build and install"; return; }
	PGPORT=${PGPORT:-54384} sl_start_cluster >/dev/null 2>&1 || { fail "samplellm: cluster"; return; }
	local psql=("$PG_BIN/psql" -X -At -v ON_ERROR_STOP=1 -d postgres)
	"${psql[@]}" >/dev/null <<EOF || { fail "samplellm: fixtures"; sl_teardown; return; }
CREATE EXTENSION samplellm;
ALTER DATABASE postgres SET samplellm.endpoint = '$LLAMA_URL';
ALTER DATABASE postgres SET samplellm.model = 'smollm2';
CREATE TYPE pet AS ENUM ('cat', 'dog', 'bird', 'fish');
CREATE TABLE pets (name varchar(8) NOT NULL, kind pet NOT NULL,
                   adopted date NOT NULL, vaccinated boolean NOT NULL);
INSERT INTO pets SELECT 'p' || i, (ARRAY['cat', 'dog', 'bird', 'fish'])[1 + i % 4]::pet,
       date '2023-01-01' + (i * 7) % 365, i % 3 <> 0 FROM generate_series(1, 80) i;
CREATE TABLE pets_check (LIKE pets INCLUDING ALL);
EOF

	# 1. a call with default settings
	seq0=$(ll_last_seq)
	log "samplellm: $rows rows with default settings (a one-slot CPU server: minutes)"
	t0=$(now)
	out=$(timeout "${LLAMA_CALL_LIMIT:-1500}" "${psql[@]}" \
		-c "CREATE TABLE got AS SELECT * FROM samplellm_generate(NULL::pets, $rows)" \
		-c "SELECT count(*) FROM got" -c "SELECT samplellm_last_run()" 2>&1)
	t1=$(now)
	secs=$(python3 -c "print(round($t1 - $t0, 1))")
	local count runrec
	count=$(sed -n 2p <<<"$out")
	runrec=$(sed -n 3p <<<"$out")
	if [ "$count" = "$rows" ]; then
		pass "a call with default settings completes: $count rows in $secs s"
	else
		fail "the default-settings call: $(head -c 600 <<<"$out")"
		sl_teardown
		return
	fi
	[ "$(jget "$runrec" 'd["retries"]')" = 0 ] && pass "retries = 0 ($(jget "$runrec" 'd["calls"]') calls)" ||
		fail "retries: $(jget "$runrec" 'd["retries"]')"
	[ "$(jget "$runrec" 'd["server"]["max_in_flight"] <= max(1, d["server"]["slots"] or 1)')" = True ] &&
		pass "in flight at most the server's slots (discovered: $(jget "$runrec" 'd["server"]["capacity_source"]') $(jget "$runrec" 'd["server"]["slots"]'), ceiling $(jget "$runrec" 'd["server"]["ceiling"]'), max in flight $(jget "$runrec" 'd["server"]["max_in_flight"]'))" ||
		fail "in flight: $(jget "$runrec" 'd["server"]')"
	if "${psql[@]}" -c "INSERT INTO pets_check SELECT * FROM got" >/dev/null 2>&1; then
		pass "every returned row is valid (inserted into a copy of the table with its constraints)"
	else fail "rows did not insert"; fi
	figure "call: $count rows in $secs s = $(python3 -c "print(round($count / $secs, 3))") rows/s; $(jget "$runrec" 'd["completion_tokens"]') completion tokens = $(jget "$runrec" "round(d['completion_tokens'] / $secs, 1)") tokens/s over the call; $(jget "$runrec" 'd["calls"]') calls, $(jget "$runrec" 'd["valid"]') valid of $(jget "$runrec" 'd["candidates"]') candidates; streaming $(jget "$runrec" 'd["server"]["streaming"]'), streamed $(jget "$runrec" 'd["server"]["streamed"]'), min_concurrency $(jget "$runrec" 'd["min_concurrency"]')"
	python3 - "$LLAMA_TIMING" "$seq0" "$t0" <<'PYEOF' | while read -r line; do figure "$line"; done
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if json.loads(l)["seq"] > int(sys.argv[2])]
t0 = float(sys.argv[3])
if not recs:
    print("in flight over time: no chat request reached the server")
    sys.exit()
# requests open at the server (received..done) and generating (slot..done)
events = sorted([(r["received"], 1, 0) for r in recs] + [((r["done"] or r["stopped"] or r["received"]), -1, 0) for r in recs] +
                [(r["slot"], 0, 1) for r in recs if r["slot"]] + [((r["done"] or r["stopped"]), 0, -1) for r in recs if r["slot"]])
open_, gen, peak_open, peak_gen, timeline = 0, 0, 0, 0, []
for t, do, dg in events:
    open_ += do; gen += dg
    peak_open, peak_gen = max(peak_open, open_), max(peak_gen, gen)
    timeline.append("%.0fs:%d/%d" % (t - t0, open_, gen))
print("in flight over time (s: open at the server/generating): " + " ".join(timeline[:40]))
print("peak: %d open at the server, %d generating; per request: %s" % (peak_open, peak_gen, ", ".join(
    "#%d %s tok %.1f tok/s" % (r["seq"], r["generated"], (r["generated"] or 0) / max(1e-3, (r["stopped"] or r["done"] or 0) - (r["first_token"] or r["slot"] or 0)))
    for r in recs)))
PYEOF

	# 2. without discovery: the AIMD window learns the one slot from the
	#    queued requests' late first bytes (LLAMA_AIMD=0 skips it)
	if [ "${LLAMA_AIMD:-1}" = 1 ]; then
		log "samplellm: the same call without capacity discovery (max_concurrency 4)"
		t0=$(now)
		out=$(timeout "${LLAMA_CALL_LIMIT:-1500}" "${psql[@]}" -c "SET samplellm.discover_capacity = off" \
			-c "SELECT count(*) FROM samplellm_generate(NULL::pets, $rows, seed => 2)" \
			-c "SELECT samplellm_last_run()" 2>&1)
		t1=$(now)
		runrec=$(sed -n 3p <<<"$out")
		if [ "$(sed -n 2p <<<"$out")" = "$rows" ] &&
			[ "$(jget "$runrec" 'd["min_concurrency"] <= 2 and d["retries"] == 0')" = True ]; then
			pass "without discovery the window shrinks to $(jget "$runrec" 'd["min_concurrency"]') (from 4; congestion $(jget "$runrec" 'd["server"]["congestion"]'), idle timeouts $(jget "$runrec" 'd["server"]["idle_timeouts"]'), retries 0) in $(python3 -c "print(round($t1 - $t0))") s"
		else fail "without discovery: $(head -c 600 <<<"$out")"; fi
	fi

	# 3. cancel mid-generation: the call ends within 1 s, the engine stops
	seq0=$(ll_last_seq)
	"${psql[@]}" -c "SET application_name = 'llama_cancel'" \
		-c "SELECT count(*) FROM samplellm_generate(NULL::pets, 20, seed => 9)" >"$WORK/cancel.out" 2>&1 &
	local cpid=$! i busy=0
	for i in $(seq 1 600); do
		out=$(curl -s "http://127.0.0.1:$LLAMA_PORT/slots")
		if [ "$(jget "$out" 'any(s["is_processing"] and s["next_token"]["n_decoded"] > 5 for s in d)' 2>/dev/null)" = True ]; then busy=1; break; fi
		sleep 0.1
	done
	if [ $busy -ne 1 ]; then
		fail "cancel: the server never started generating"
		kill "$cpid" 2>/dev/null
	else
		t0=$(now)
		"${psql[@]}" -c "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'llama_cancel'" >/dev/null
		wait "$cpid"
		t1=$(now)
		secs=$(python3 -c "print(round($t1 - $t0, 2))")
		if grep -q "canceling statement due to user request" "$WORK/cancel.out" &&
			[ "$(python3 -c "print($t1 - $t0 < 1.0)")" = True ]; then
			pass "cancel mid-generation ends the call in $secs s"
		else fail "cancel: $secs s, $(head -c 300 "$WORK/cancel.out")"; fi
		sleep 1.2
		rec=$(python3 -c "
import json
recs = [json.loads(l) for l in open('$LLAMA_TIMING')]
c = [r for r in recs if r['seq'] > $seq0 and r['cancelled']]
print(json.dumps(c[-1]) if c else '')")
		if [ -n "$rec" ] && [ "$(jget "$rec" 'd["stopped"] is not None and d["stopped"] - d["cancelled_at"] < 1.0')" = True ]; then
			pass "the server stopped generating $(jget "$rec" 'round((d["stopped"] - d["cancelled_at"]) * 1000)') ms after the disconnect ($(jget "$rec" 'd["generated"]') tokens)"
		else fail "the server after the cancel: ${rec:-no cancelled request in the timing log}"; fi
		out=$(curl -s "http://127.0.0.1:$LLAMA_PORT/slots")
		[ "$(jget "$out" 'any(s["is_processing"] for s in d)')" = False ] && pass "no slot busy after the cancel" ||
			fail "a slot is still busy after the cancel: $out"
	fi
	sl_teardown
}
