#!/usr/bin/env bash
# Fuzzes every reader of untrusted input (README: Fuzzing).  Builds the
# extension with `make FUZZ=1` (AddressSanitizer, the fuzz targets) in a copy
# of the tree, never installed: the normal build is left alone.  Starts a
# throwaway cluster with libasan preloaded, loads that build by its path, and
# runs cloudconn_fuzz() once per target in a session of its own.  Prints, per
# target: the inputs, how they came out (read, refused, ERROR, internal
# ERROR), the crashes (the backend died) and the ASan findings (reports in the
# server log); exits non-zero if any target had a crash, a finding, an
# internal error, an ERROR where its reader should refuse with a message of
# its own, or fewer inputs than asked.
#   usage: test/fuzz/run.sh [-n INPUTS] [-s SEED] [-w WORKDIR] [-t TARGET[,TARGET...]]
#   -n  inputs per target (default 100000; CI's smoke: 3000)
#   -s  the mutator's seed (default 1): the same seed gives the same inputs
#   -w  work directory (default: a new one under /tmp, removed at the end)
#   -t  only these targets (default: all)
# Run as a non-root user (PostgreSQL refuses root); pg_config on PATH (or
# PG_CONFIG) names the PostgreSQL 15 to build against and run.  An input that
# crashed is left in WORKDIR/crashes/crash-TARGET (the work directory is then
# kept); add it to test/fuzz/corpus/TARGET/ as regress-NAME with the fix.
set -uo pipefail

inputs=100000
seed=1
work=
only=
while getopts "n:s:w:t:" opt; do
	case $opt in
	n) inputs=$OPTARG ;;
	s) seed=$OPTARG ;;
	w) work=$OPTARG ;;
	t) only=$OPTARG ;;
	*) sed -n '2,20p' "$0"; exit 2 ;;
	esac
done
if [ "$(id -u)" = 0 ]; then
	echo "run.sh: run as a non-root user (PostgreSQL refuses to run as root)" >&2
	exit 2
fi
tree=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
pg_config=${PG_CONFIG:-$(command -v pg_config)}
bindir=$("$pg_config" --bindir)
export PATH="$bindir:$PATH"
keep=0
if [ -z "$work" ]; then
	work=$(mktemp -d /tmp/cloudconn-fuzz.XXXXXX)
else
	keep=1
	mkdir -p "$work"
fi
src=$work/src
data=$work/cluster
sock=$work/sock
log=$work/server.log
crashes=$work/crashes
port=$((57000 + $$ % 2000))

cleanup() {
	pg_ctl -D "$data" -m immediate -w stop >/dev/null 2>&1 || true
	if [ "$keep" = 0 ] && [ ! -s "$work/keep" ]; then
		rm -rf "$work"
	fi
}
trap cleanup EXIT

echo "=== fuzz: building with AddressSanitizer (make FUZZ=1) in $src"
rm -rf "$src"
mkdir -p "$src" "$sock" "$crashes"
(cd "$tree" && tar --exclude=.git --exclude='*.o' --exclude='*.so' --exclude='*.bc' \
	--exclude=./results --exclude=./tmp_check -cf - .) | tar -C "$src" -xf -
if ! make -C "$src" -j2 FUZZ=1 with_llvm=no PG_CONFIG="$pg_config" >"$work/build.log" 2>&1; then
	grep -v '^gcc ' "$work/build.log" | tail -30
	echo "run.sh: the FUZZ build failed" >&2
	exit 1
fi
so=$src/cloudconn.so
asan=$(ldd "$so" | awk '/libasan/ {print $3; exit}')
if [ -z "$asan" ] || [ ! -e "$asan" ]; then
	echo "run.sh: $so is not linked with libasan" >&2
	exit 1
fi
# makes ASan start before glibc's gettext lock is taken (see the file)
shim=$work/asan_first.so
if ! cc -shared -fPIC -O2 -o "$shim" "$tree/test/fuzz/asan_first.c" -ldl >>"$work/build.log" 2>&1; then
	tail -5 "$work/build.log"
	exit 1
fi

initdb -D "$data" -A trust -U postgres >"$work/initdb.log" 2>&1 || { cat "$work/initdb.log"; exit 1; }
cat >>"$data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$sock'
port = $port
fsync = off
max_connections = 10
shared_buffers = 16MB
log_min_messages = warning
CONF
# detect_leaks=0: a backend does not free what lives as long as it does.
# allocator_may_return_null=1: an allocation ASan cannot make fails as malloc would.
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:allocator_may_return_null=1:detect_odr_violation=0:print_summary=1"
if ! LD_PRELOAD=$asan:$shim pg_ctl -D "$data" -l "$log" -w start >/dev/null; then
	cat "$log"
	exit 1
fi
export PGHOST=$sock PGPORT=$port PGUSER=postgres PGDATABASE=postgres
psql -X -q -v ON_ERROR_STOP=1 <<SQL || exit 1
CREATE SCHEMA fuzz;
CREATE FUNCTION fuzz.targets() RETURNS SETOF text
	AS '$so', 'cloudconn_fuzz_targets' LANGUAGE C STRICT;
CREATE FUNCTION fuzz.run(corpus text, target text, inputs bigint, seed bigint, crash_dir text,
	OUT target text, OUT seeds int, OUT inputs bigint, OUT read bigint, OUT refused bigint,
	OUT errors bigint, OUT internal_errors bigint, OUT first_internal_error text, OUT seconds float8,
	OUT first_error text)
	AS '$so', 'cloudconn_fuzz' LANGUAGE C STRICT;
SQL
targets=$(psql -X -At -c "SELECT * FROM fuzz.targets()") || exit 1
if [ -n "$only" ]; then
	targets=$(echo "$only" | tr ',' '\n')
fi

wait_ready() {
	for _ in $(seq 1 120); do
		pg_isready -q && psql -X -At -c "SELECT 1" >/dev/null 2>&1 && return 0
		sleep 0.5
	done
	return 1
}

echo "=== fuzz: $inputs inputs per target, seed $seed"
printf "%-26s %6s %9s %9s %9s %9s %8s %7s %9s %8s\n" target seeds inputs read refused errors internal crashes asan seconds
# DescribeRegions' reader raises for an answer that is not one (the run cannot go on)
raising="aws_regions"
failed=0
total=0
for t in $targets; do
	corpus=$tree/test/fuzz/corpus/$t
	if [ ! -d "$corpus" ]; then
		echo "run.sh: no corpus for $t ($corpus)" >&2
		failed=1
		continue
	fi
	before=$(stat -c %s "$log")
	row=$(psql -X -At -F '|' -c "SELECT target, seeds, inputs, read, refused, errors, internal_errors, round(seconds::numeric, 1), translate(coalesce(first_internal_error, ''), E'|\n', '/ '), translate(coalesce(first_error, ''), E'\n', ' ') FROM fuzz.run('$corpus', '$t', $inputs, $seed, '$crashes')" 2>"$work/psql.err")
	rc=$?
	sleep 0.2
	tail -c +$((before + 1)) "$log" >"$work/log-$t"
	findings=$(grep -c 'ERROR: AddressSanitizer' "$work/log-$t")
	died=$(grep -c 'was terminated by signal\|terminated by signal\|exited with exit code 1' "$work/log-$t")
	if [ $rc -ne 0 ] || [ -z "$row" ]; then
		crashes_n=$((died > 0 ? died : 1))
		printf "%-26s %6s %9s %9s %9s %9s %8s %7s %9s %8s\n" "$t" - - - - - - "$crashes_n" "$findings" -
		sed -n '1,3p' "$work/psql.err" | sed 's/^/    /'
		grep -m1 -A12 'ERROR: AddressSanitizer' "$work/log-$t" | sed 's/^/    /'
		[ -s "$crashes/crash-$t" ] && echo "    the input is in $crashes/crash-$t" && echo 1 >"$work/keep"
		failed=1
		wait_ready || { echo "run.sh: the server did not come back" >&2; exit 1; }
		continue
	fi
	IFS='|' read -r name nseeds n nread nrefused nerrors ninternal secs first first_error <<<"$row"
	printf "%-26s %6s %9s %9s %9s %9s %8s %7s %9s %8s\n" "$name" "$nseeds" "$n" "$nread" "$nrefused" "$nerrors" "$ninternal" "$died" "$findings" "$secs"
	[ -n "$first" ] && echo "    first internal error: $first"
	[ -n "$first_error" ] && echo "    first ERROR: $first_error"
	total=$((total + n))
	if [ "$ninternal" != 0 ] || [ "$findings" != 0 ] || [ "$died" != 0 ] || [ "$n" -lt "$inputs" ]; then
		failed=1
	fi
	# a reader refuses with its own message; only these raise an ERROR by design
	case " $raising " in
	*" $t "*) ;;
	*) if [ "$nerrors" != 0 ]; then echo "    an ERROR where the reader should refuse"; failed=1; fi ;;
	esac
done
echo "=== fuzz: $total inputs in all; $([ $failed = 0 ] && echo "0 crashes, 0 ASan findings, 0 internal errors" || echo "FAILED (see above)")"
[ $failed = 0 ] && rm -f "$work/keep"
[ -s "$work/keep" ] && echo "=== fuzz: work directory kept: $work"
exit $failed
