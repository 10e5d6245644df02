# Shared helpers for the benchmarks: a throwaway cluster that preloads
# cloudconn, on a private socket, removed on exit.  Sourced, not run.
#   bench_cluster_start NAME   -> sets BENCH_DIR, PGHOST, PGPORT, PGUSER
bench_cluster_start() {
	local name=$1
	PATH="$(pg_config --bindir):$PATH"
	BENCH_DIR=$(mktemp -d "/tmp/cloudconn-bench-$name.XXXXXX")
	mkdir -p "$BENCH_DIR/sock"
	initdb -D "$BENCH_DIR/data" -A trust -U postgres >"$BENCH_DIR/initdb.log" 2>&1 || { cat "$BENCH_DIR/initdb.log"; return 1; }
	cat >>"$BENCH_DIR/data/postgresql.conf" <<CONF
shared_preload_libraries = 'cloudconn'
listen_addresses = ''
unix_socket_directories = '$BENCH_DIR/sock'
port = 55499
shared_buffers = 512MB
max_wal_size = 4GB
cloudconn.scheduler_enabled = off
CONF
	pg_ctl -D "$BENCH_DIR/data" -l "$BENCH_DIR/server.log" -w start >/dev/null || { cat "$BENCH_DIR/server.log"; return 1; }
	export PGHOST="$BENCH_DIR/sock" PGPORT=55499 PGUSER=postgres PGDATABASE=postgres
	[ -n "${BENCH_KEEP:-}" ] || trap bench_cluster_stop EXIT
}

bench_cluster_stop() {
	pg_ctl -D "$BENCH_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
	rm -rf "$BENCH_DIR"
}

# Start the DigitalOcean simulator of test/sim on HTTPS with a fresh test CA,
# with the generator spec given (JSON), and point the cluster at it.  The
# per-minute burst limit is off: the benchmarks measure cloudconn, not
# DigitalOcean's quota.  Extra simulator flags follow the spec.  Sets
# DO_URL and DO_TOKEN (the simulator's default read token).
#   bench_start_digitalocean '{"count": 100, "regions": ["ams3"], "seed": 1}' [--latency-ms 20]
bench_start_digitalocean() {
	local spec=$1
	shift
	local sim
	sim="$(cd "$(dirname "${BASH_SOURCE[0]}")/../sim" && pwd)"
	bash "$sim/make_test_ca.sh" "$BENCH_DIR/ca" >/dev/null
	/usr/bin/python3 "$sim/digitalocean_sim.py" --cert "$BENCH_DIR/ca/server.crt" --key "$BENCH_DIR/ca/server.key" \
		--port 0 --port-file "$BENCH_DIR/do.port" --no-burst-limit --hourly-limit 100000000 \
		--exit-with-parent "$@" >"$BENCH_DIR/do.out" 2>&1 &
	BENCH_SIM_PID=$!
	trap 'kill $BENCH_SIM_PID 2>/dev/null; bench_cluster_stop' EXIT
	for _ in $(seq 100); do [ -s "$BENCH_DIR/do.port" ] && break; sleep 0.1; done
	DO_URL="https://127.0.0.1:$(cat "$BENCH_DIR/do.port")"
	DO_TOKEN="dop_v1_$(printf '5317%.0s' $(seq 16))"
	curl -sS --cacert "$BENCH_DIR/ca/ca.crt" -X POST "$DO_URL/_sim/droplets/generate" -d "$spec" >/dev/null
	cat >>"$BENCH_DIR/data/postgresql.conf" <<CONF
cloudconn.ca_file = '$BENCH_DIR/ca/ca.crt'
cloudconn.digitalocean_api_url = '$DO_URL'
CONF
}
