#!/usr/bin/env bash
# The newcomer's first command (Debian 12, as root): installs, builds, starts
# a throwaway cluster that preloads cloudconn, walks through test/demo.sql,
# and removes everything again.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/../.ci/setup"

runuser -u postgres -- bash -s "$work" <<'SCRIPT'
set -euo pipefail
work=$1
export PATH="$(pg_config --bindir):$PATH"
initdb -D "$work/demo-cluster" -A trust -U postgres >/dev/null
mkdir -p "$work/sock"
cat >>"$work/demo-cluster/postgresql.conf" <<CONF
shared_preload_libraries = 'cloudconn'
listen_addresses = ''
unix_socket_directories = '$work/sock'
port = 55433
CONF
pg_ctl -D "$work/demo-cluster" -l "$work/demo-cluster.log" -w start >/dev/null
trap 'pg_ctl -D "$work/demo-cluster" -m fast -w stop >/dev/null' EXIT
echo
echo "=== cloudconn demo (throwaway cluster in $work)"
psql -X -h "$work/sock" -p 55433 -d postgres -f "$work/src/test/demo.sql"
SCRIPT
