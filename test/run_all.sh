#!/usr/bin/env bash
# Runs every test suite against the installed extension, as a non-root OS
# user: a throwaway cluster (preloading cloudconn) for pg_regress, the TAP
# tests (which make clusters of their own), the simulators' self-tests, the
# fuzzing smoke (test/fuzz/run.sh, FUZZ_INPUTS per reader, 3000 by
# default), test/demo.sh (--installed), and the benchmarks at BENCH_SCALE
# (smoke in CI).  Prints each runner's summary and a closing "N passed, N
# failed" line over the suites; exits non-zero if any failed.
#   usage: test/run_all.sh WORKDIR   (WORKDIR/src is the source tree)
set -uo pipefail

work=${1:?usage: run_all.sh WORKDIR}
src="$work/src"
bindir=$(pg_config --bindir)
export PATH="$bindir:$PATH"

passed=0
failed=0
failures=()

suite() {
	local name=$1
	shift
	echo
	echo "=== suite: $name"
	if "$@"; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		failures+=("$name")
	fi
}

# A throwaway cluster for pg_regress on a private socket (no TCP listener).
pgdata="$work/regress-cluster"
sockdir="$work/sock"
mkdir -p "$sockdir"
port=55432
initdb -D "$pgdata" -A trust -U postgres >"$work/initdb.log" 2>&1 || { cat "$work/initdb.log"; exit 1; }
cat >>"$pgdata/postgresql.conf" <<CONF
shared_preload_libraries = 'cloudconn'
listen_addresses = ''
unix_socket_directories = '$sockdir'
port = $port
cloudconn.database = 'contrib_regression'
CONF
pg_ctl -D "$pgdata" -l "$work/regress-cluster.log" -w start >/dev/null
stop_cluster() { pg_ctl -D "$pgdata" -m fast -w stop >/dev/null 2>&1 || true; }
trap stop_cluster EXIT

export PGHOST="$sockdir" PGPORT="$port" PGUSER=postgres

regress() {
	if make -C "$src" installcheck TAP_TESTS= ; then
		return 0
	fi
	[ -f "$src/regression.diffs" ] && cat "$src/regression.diffs"
	return 1
}
suite pg_regress regress

stop_cluster
unset PGHOST PGPORT

tap() {
	make -C "$src" installcheck REGRESS= PROVE_FLAGS="--timer"
}
suite tap tap

simulators() {
	/usr/bin/python3 "$src/test/sim/test_simlib.py" &&
		/usr/bin/python3 "$src/test/sim/test_digitalocean_sim.py" &&
		/usr/bin/python3 "$src/test/sim/test_aws_sim.py" &&
		/usr/bin/python3 "$src/test/sim/test_aws_caller_sim.py" &&
		/usr/bin/python3 "$src/test/sim/test_azure_sim.py"
}
suite simulators simulators

# The AddressSanitizer build, made in a copy of its own (the installed
# extension is left alone), fed FUZZ_INPUTS mutated inputs per reader.
fuzz() {
	bash "$src/test/fuzz/run.sh" -n "${FUZZ_INPUTS:-3000}" -w "$work/fuzz"
}
suite fuzz fuzz

# the README's first command, test/demo.sh, on the extension installed here
demo() {
	bash "$src/test/demo.sh" --installed >"$work/demo.out" 2>&1 && return 0
	tail -60 "$work/demo.out"
	return 1
}
suite demo demo

bench() {
	bash "$src/test/bench/run.sh" "${BENCH_SCALE:-smoke}"
}
suite bench bench

echo
echo "=== summary"
if [ "$failed" -gt 0 ]; then
	echo "failed suites: ${failures[*]}"
fi
echo "suites: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
