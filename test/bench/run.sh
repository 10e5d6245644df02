#!/usr/bin/env bash
# Runs every benchmark and prints its figures.  `run.sh full` is the real
# measurement; `run.sh smoke` (what CI runs) only proves they work.
set -euo pipefail
scale=${1:-full}
here=$(cd "$(dirname "$0")" && pwd)
bash "$here/rls.sh" "$scale"
echo
bash "$here/digitalocean.sh" "$scale"
echo
bash "$here/history.sh" "$scale"
echo
bash "$here/scheduler.sh" "$scale"
echo
bash "$here/aws.sh" "$scale"
echo
bash "$here/azure.sh" "$scale"
