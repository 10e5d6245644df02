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
