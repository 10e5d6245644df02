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

# Start a simulator of test/sim (script name, then its own flags) on HTTPS
# with a fresh test CA shared by every simulator of the bench; sets
# BENCH_SIM_URL.  Every simulator started is stopped on exit.
bench_start_sim() {
	local script=$1
	shift
	local sim name
	sim="$(cd "$(dirname "${BASH_SOURCE[0]}")/../sim" && pwd)"
	name=${script%.py}
	[ -s "$BENCH_DIR/ca/ca.crt" ] || bash "$sim/make_test_ca.sh" "$BENCH_DIR/ca" >/dev/null
	/usr/bin/python3 "$sim/$script" --cert "$BENCH_DIR/ca/server.crt" --key "$BENCH_DIR/ca/server.key" \
		--port 0 --port-file "$BENCH_DIR/$name.port" --exit-with-parent "$@" >"$BENCH_DIR/$name.out" 2>&1 &
	BENCH_SIM_PIDS="${BENCH_SIM_PIDS:-} $!"
	trap 'kill $BENCH_SIM_PIDS 2>/dev/null; bench_cluster_stop' EXIT
	for _ in $(seq 100); do [ -s "$BENCH_DIR/$name.port" ] && break; sleep 0.1; done
	[ -s "$BENCH_DIR/$name.port" ] || { cat "$BENCH_DIR/$name.out"; return 1; }
	BENCH_SIM_URL="https://127.0.0.1:$(cat "$BENCH_DIR/$name.port")"
	cat >>"$BENCH_DIR/data/postgresql.conf" <<CONF
cloudconn.ca_file = '$BENCH_DIR/ca/ca.crt'
CONF
}

# A control request to a simulator: method, URL path, JSON body.
bench_sim_control() {
	curl -sS --fail-with-body --cacert "$BENCH_DIR/ca/ca.crt" -X "$1" "$BENCH_SIM_URL$2" -d "$3"
}

# Start the DigitalOcean simulator with the generator spec given (JSON) and
# point the cluster at it.  The per-minute burst limit is off: the
# benchmarks measure cloudconn, not DigitalOcean's quota.  Extra simulator
# flags follow the spec.  Sets DO_URL and DO_TOKEN (the simulator's default
# read token).
#   bench_start_digitalocean '{"count": 100, "regions": ["ams3"], "seed": 1}' [--latency-ms 20]
bench_start_digitalocean() {
	local spec=$1
	shift
	bench_start_sim digitalocean_sim.py --no-burst-limit --hourly-limit 100000000 "$@"
	DO_URL=$BENCH_SIM_URL
	DO_TOKEN="dop_v1_$(printf '5317%.0s' $(seq 16))"
	bench_sim_control POST /_sim/droplets/generate "$spec" >/dev/null
	cat >>"$BENCH_DIR/data/postgresql.conf" <<CONF
cloudconn.digitalocean_api_url = '$DO_URL'
CONF
}

# Start the AWS simulator (STS, EC2, RDS, S3, Lambda) and point the cluster at it, with
# the simulator's default caller in a credentials file.  Extra simulator
# flags are passed on.  Sets AWS_URL.
#   bench_start_aws [--latency-ms 50]
bench_start_aws() {
	bench_start_sim aws_sim.py "$@"
	AWS_URL=$BENCH_SIM_URL
	printf '[default]\naws_access_key_id = AKIASIMULATORCALLER2\naws_secret_access_key = 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\n' \
		>"$BENCH_DIR/aws-credentials"
	chmod 0600 "$BENCH_DIR/aws-credentials"
	cat >>"$BENCH_DIR/data/postgresql.conf" <<CONF
cloudconn.aws_credentials_file = '$BENCH_DIR/aws-credentials'
cloudconn.aws_sts_endpoint = '$AWS_URL'
cloudconn.aws_ec2_endpoint = '$AWS_URL/'
cloudconn.aws_rds_endpoint = '$AWS_URL/'
cloudconn.aws_s3_endpoint = '$AWS_URL'
cloudconn.aws_lambda_endpoint = '$AWS_URL'
cloudconn.aws_discovery_role_arn = 'arn:aws:iam::111122223333:role/AnzenDiscoveryRole'
CONF
}

# Start the Azure simulator (token endpoint and Resource Manager on one
# origin) and point the cluster at it.  Extra simulator flags are passed on.
# Sets AZURE_URL, and AZURE_TENANT, AZURE_CLIENT and AZURE_SECRET (the
# simulator's default service principal).
#   bench_start_azure [--latency-ms 50]
bench_start_azure() {
	bench_start_sim azure_sim.py "$@"
	AZURE_URL=$BENCH_SIM_URL
	AZURE_TENANT=8b1f0c2e-5a3d-4e6f-9c7b-0a1b2c3d4e5f
	AZURE_CLIENT=3c9e7a51-6d2b-4f80-a1c4-7e5d9b2f6a03
	AZURE_SECRET='SimQ8~cloudconn.ClientSecret-0123456789_abcdefgh'
	cat >>"$BENCH_DIR/data/postgresql.conf" <<CONF
cloudconn.azure_login_url = '$AZURE_URL'
cloudconn.azure_management_url = '$AZURE_URL'
CONF
}

# What a run's LOG line and detail say of it (the run with id $1):
# "cpu_seconds listing_seconds merge_seconds peak_private_kb peak_context_kb"
bench_run_figures() {
	grep -A1 "cloudconn: run $1 of connector" "$BENCH_DIR/server.log" | awk '
		/Listing took/ {
			match($0, /Listing took [0-9.]+ s, the merge [0-9.]+ s/)
			split(substr($0, RSTART, RLENGTH), p, " "); listing = p[3]; merge = p[7]
			match($0, /Peak memory: [0-9]+ kB in memory contexts, [0-9]+ kB private resident/)
			split(substr($0, RSTART, RLENGTH), m, " "); contexts = m[3]; private = m[8]
			match($0, /CPU: user: [0-9.]+ s, system: [0-9.]+ s/)
			split(substr($0, RSTART, RLENGTH), c, " "); cpu = c[3] + c[6]
			printf "%.2f %.2f %.2f %d %d\n", cpu, listing, merge, private, contexts
			exit
		}'
}
