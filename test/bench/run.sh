#!/usr/bin/env bash
# Runs every benchmark and prints its figures.  `run.sh full` is the real
# measurement; `run.sh smoke` (what CI runs) only proves they work.
set -euo pipefail
scale=${1:-full}
here=$(cd "$(dirname "$0")" && pwd)
# Each benchmark is bounded in time (BENCH_LIMIT seconds; by default 15
# minutes at smoke, 3 hours at full): a stuck run or fire fails it, and CI,
# instead of hanging them.  scheduler.sh bounds each fire's wait as well.
case "$scale" in
	smoke) limit=${BENCH_LIMIT:-900} ;;
	*) limit=${BENCH_LIMIT:-10800} ;;
esac
bench() {
	local rc=0
	timeout --kill-after=30 "$limit" bash "$here/$1" "$scale" || rc=$?
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		echo "$1: not over after $limit s: stopped (a stuck run?)" >&2
	fi
	return "$rc"
}
bench rls.sh
echo
bench digitalocean.sh
echo
bench history.sh
echo
bench scheduler.sh
echo
bench aws.sh
echo
bench azure.sh
