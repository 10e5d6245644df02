#!/usr/bin/env bash
# The newcomer's first command (Debian 12, as root): installs, builds, starts
# a throwaway cluster that preloads cloudconn and the bundled AWS,
# DigitalOcean and Azure simulators (with a throwaway test CA), walks through
# test/demo.sql, and removes everything again.
#   sudo bash test/demo.sh               the README's first command
#   bash test/demo.sh --installed        what CI runs (test/run_all.sh): the
#                                        same tour, as the postgres OS user,
#                                        against the cloudconn already built
#                                        and installed; installs nothing
set -euo pipefail

demo_script=$(cat <<'SCRIPT'
set -euo pipefail
work=$1
export PATH="$(pg_config --bindir):$PATH"
sim="$work/src/test/sim"

# the simulators, on HTTPS with a test CA made just now
bash "$sim/make_test_ca.sh" "$work/ca" >/dev/null
sim_pids=
start_sim() {	# script name -> prints its URL once it listens
	local name=${1%.py}
	/usr/bin/python3 "$sim/$1" --cert "$work/ca/server.crt" --key "$work/ca/server.key" \
		--port 0 --port-file "$work/$name.port" --exit-with-parent >"$work/$name.out" 2>&1 &
	sim_pids="$sim_pids $!"
	for _ in $(seq 100); do [ -s "$work/$name.port" ] && break; sleep 0.1; done
	[ -s "$work/$name.port" ] || { cat "$work/$name.out" >&2; exit 1; }
}
control() {	# method URL [curl args...]: a control request to a simulator
	curl -sS --fail-with-body --cacert "$work/ca/ca.crt" -X "$@"
}
start_sim digitalocean_sim.py
do_url="https://127.0.0.1:$(cat "$work/digitalocean_sim.port")"
control POST "$do_url/_sim/droplets/generate" -d '{"count": 450, "regions": ["ams3", "nyc1", "fra1"], "seed": 1}' >/dev/null
# and the other types: volumes, load balancers, Kubernetes clusters, managed
# databases, reserved IPs
for t in volumes:60 load_balancers:8 kubernetes_clusters:3 databases:4 reserved_ips:12; do
	IFS=: read -r kind count <<<"$t"
	control POST "$do_url/_sim/$kind/generate" -d "{\"count\": $count, \"regions\": [\"ams3\", \"nyc1\", \"fra1\"], \"seed\": 1}" >/dev/null
done
start_sim aws_sim.py
aws_url="https://127.0.0.1:$(cat "$work/aws_sim.port")"
# per region: instances, VPCs, RDS DB instances, Lambda functions; and buckets
for r in eu-west-1:120:5:4:15:1 eu-central-1:60:3:3:8:2; do
	IFS=: read -r region count vpcs dbs functions seed <<<"$r"
	acct="$aws_url/_sim/accounts/123456789012/regions/$region"
	control POST "$acct/instances/generate" \
		-d "{\"count\": $count, \"seed\": $seed, \"states\": [\"running\", \"running\", \"stopped\"]}" >/dev/null
	control POST "$acct/vpcs/generate" -d "{\"count\": $vpcs, \"seed\": $seed}" >/dev/null
	control POST "$acct/db-instances/generate" -d "{\"count\": $dbs, \"seed\": $seed}" >/dev/null
	control POST "$acct/functions/generate" -d "{\"count\": $functions, \"seed\": $seed}" >/dev/null
done
control POST "$aws_url/_sim/accounts/123456789012/buckets/generate" \
	-d '{"count": 12, "seed": 1, "regions": ["eu-west-1", "eu-central-1", "us-east-1"]}' >/dev/null
start_sim azure_sim.py
azure_url="https://127.0.0.1:$(cat "$work/azure_sim.port")"
# two subscriptions the simulator's service principal may read (Reader), and
# one it has no role on
for s in 0a1b2c3d-1111-4aaa-8bbb-000000000001:Production:80:1 0a1b2c3d-2222-4aaa-8bbb-000000000002:Research:40:2; do
	IFS=: read -r sub name count seed <<<"$s"
	control POST "$azure_url/_sim/subscriptions" -d "{\"subscription_id\": \"$sub\", \"display_name\": \"$name\"}" >/dev/null
	control POST "$azure_url/_sim/subscriptions/$sub/generate" \
		-d "{\"count\": $count, \"seed\": $seed, \"group_prefix\": \"$name\", \"power_states\": [\"running\", \"running\", \"deallocated\"]}" >/dev/null
done
control POST "$azure_url/_sim/subscriptions" -d '{"subscription_id": "0a1b2c3d-3333-4aaa-8bbb-000000000003", "display_name": "Someone else'"'"'s", "roles": {}}' >/dev/null
# the platform's caller: the simulator's default keys, in a credentials file
# as the AWS convention has it (only the server's OS user can read it)
printf '[default]\naws_access_key_id = AKIASIMULATORCALLER2\naws_secret_access_key = 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\n' \
	>"$work/aws-credentials"
chmod 0600 "$work/aws-credentials"

initdb -D "$work/demo-cluster" -A trust -U postgres >/dev/null
mkdir -p "$work/sock"
cat >>"$work/demo-cluster/postgresql.conf" <<CONF
shared_preload_libraries = 'cloudconn'
listen_addresses = ''
unix_socket_directories = '$work/sock'
port = 55433
cloudconn.ca_file = '$work/ca/ca.crt'
cloudconn.digitalocean_api_url = '$do_url'
cloudconn.aws_sts_endpoint = '$aws_url'
cloudconn.aws_ec2_endpoint = '$aws_url/'
cloudconn.aws_rds_endpoint = '$aws_url/'
cloudconn.aws_s3_endpoint = '$aws_url'
cloudconn.aws_lambda_endpoint = '$aws_url'
cloudconn.aws_credentials_file = '$work/aws-credentials'
cloudconn.aws_discovery_role_arn = 'arn:aws:iam::111122223333:role/AnzenDiscoveryRole'
cloudconn.azure_login_url = '$azure_url'
cloudconn.azure_management_url = '$azure_url'
CONF
pg_ctl -D "$work/demo-cluster" -l "$work/demo-cluster.log" -w start >/dev/null
trap 'pg_ctl -D "$work/demo-cluster" -m fast -w stop >/dev/null; kill $sim_pids 2>/dev/null' EXIT
echo
echo "=== cloudconn demo (throwaway cluster in $work)"
echo "    AWS simulator (STS, EC2, RDS, S3, Lambda) at $aws_url: account 123456789012 with, in 2 regions,"
echo "      180 instances, 8 VPCs, 7 DB instances, 23 Lambda functions; and 12 S3 buckets"
echo "    DigitalOcean simulator at $do_url: in 3 regions, 450 droplets, 60 volumes, 8 load balancers,"
echo "      3 Kubernetes clusters, 4 managed databases and 12 reserved IPs"
echo "    Azure simulator (login and Resource Manager) at $azure_url: 120 VMs in 2 subscriptions"
# demo.sql applies the CloudFormation template to the simulator's account
# with this command (the customer's step), the template read from a file
export DEMO_APPLY_TEMPLATE="curl -sS --fail-with-body --cacert $work/ca/ca.crt -X POST $aws_url/_sim/accounts/123456789012/apply-template --data-binary @$work/template.json"
# the simulator's read-only token and the Azure service principal's client
# secret, passed as psql variables (bind-style parameters, never pasted into
# SQL text by the application)
psql -X -h "$work/sock" -p 55433 -d postgres -v do_token="dop_v1_$(printf '5317%.0s' $(seq 16))" \
	-v azure_secret='SimQ8~cloudconn.ClientSecret-0123456789_abcdefgh' \
	-v template_file="$work/template.json" -f "$work/src/test/demo.sql"
SCRIPT
)

if [ "${1:-}" = "--installed" ]; then
	work=$(mktemp -d /tmp/cloudconn-demo.XXXXXX)
	trap 'rm -rf "$work"' EXIT
	ln -s "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)" "$work/src"
	bash -c "$demo_script" demo "$work"
else
	. "$(dirname "${BASH_SOURCE[0]}")/../.ci/setup"
	runuser -u postgres -- bash -c "$demo_script" demo "$work"
fi
