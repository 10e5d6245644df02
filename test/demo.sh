#!/usr/bin/env bash
# The newcomer's first command (Debian 12, as root): installs, builds, starts
# a throwaway cluster that preloads cloudconn and the bundled DigitalOcean
# simulator (with a throwaway test CA), walks through test/demo.sql, and
# removes everything again.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/../.ci/setup"

runuser -u postgres -- bash -s "$work" <<'SCRIPT'
set -euo pipefail
work=$1
export PATH="$(pg_config --bindir):$PATH"
sim="$work/src/test/sim"

# the DigitalOcean simulator, on HTTPS with a test CA made just now
bash "$sim/make_test_ca.sh" "$work/ca" >/dev/null
/usr/bin/python3 "$sim/digitalocean_sim.py" --cert "$work/ca/server.crt" --key "$work/ca/server.key" \
	--port 0 --port-file "$work/do.port" --exit-with-parent >"$work/do.out" 2>&1 &
sim_pid=$!
for _ in $(seq 100); do [ -s "$work/do.port" ] && break; sleep 0.1; done
do_url="https://127.0.0.1:$(cat "$work/do.port")"
curl -sS --cacert "$work/ca/ca.crt" -X POST "$do_url/_sim/droplets/generate" \
	-d '{"count": 450, "regions": ["ams3", "nyc1", "fra1"], "seed": 1}' >/dev/null

initdb -D "$work/demo-cluster" -A trust -U postgres >/dev/null
mkdir -p "$work/sock"
cat >>"$work/demo-cluster/postgresql.conf" <<CONF
shared_preload_libraries = 'cloudconn'
listen_addresses = ''
unix_socket_directories = '$work/sock'
port = 55433
cloudconn.ca_file = '$work/ca/ca.crt'
cloudconn.digitalocean_api_url = '$do_url'
CONF
pg_ctl -D "$work/demo-cluster" -l "$work/demo-cluster.log" -w start >/dev/null
trap 'pg_ctl -D "$work/demo-cluster" -m fast -w stop >/dev/null; kill $sim_pid 2>/dev/null' EXIT
echo
echo "=== cloudconn demo (throwaway cluster in $work)"
echo "    DigitalOcean simulator at $do_url, 450 droplets in 3 regions"
# the simulator's read-only token, passed as a psql variable (a bind-style
# parameter, never pasted into SQL text by the application)
psql -X -h "$work/sock" -p 55433 -d postgres -v do_token="dop_v1_$(printf '5317%.0s' $(seq 16))" \
	-f "$work/src/test/demo.sql"
SCRIPT
