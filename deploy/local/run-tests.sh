#!/usr/bin/env bash
# The test command: installs what is missing, starts the local RabbitMQ and PostgreSQL,
# checks the deployment files, runs every test against them (the chaos and cluster suites
# last, each on its own), and stops them again.
# Arguments go to `swift test` instead (e.g. --filter SessionWorkerTests).
set -euo pipefail
cd "$(dirname "$0")/../.."

# The full run first checks that the local services start beside servers on the usual ports:
# before ours start, so that it has their default ports to itself (a data directory of its own).
[ $# -gt 0 ] || deploy/local/test-services-beside-others.sh
deploy/local/services.sh start
trap 'deploy/local/services.sh stop' EXIT
eval "$(deploy/local/services.sh env)"
export TSYNC_TEST_AMQP_URL=$TSYNC_AMQP_URL
export TSYNC_TEST_MANAGEMENT_URL=$TSYNC_MANAGEMENT_URL
export TSYNC_TEST_DATABASE_URL=$TSYNC_DATABASE_URL

swift build --build-tests
if [ $# -gt 0 ]; then
  swift test "$@"
else
  # The deployment files are checked against the Kubernetes, KEDA and Compose schemas and
  # against each other (and the checks against broken copies of them).
  deploy/validate-manifests.sh
  deploy/validate-manifests.sh --self-test
  # The alert rules, through promtool, against synthetic series.
  deploy/prometheus/test-rules.sh
  # The Grafana dashboard: well formed for import, its queries parse (promtool) and name only metrics the
  # code exports, the rules record or RabbitMQ's plugin serves (and the check against broken copies).
  python3 deploy/grafana/check-dashboard.py
  python3 deploy/grafana/check-dashboard.py --self-test
  # The chaos suite restarts servers of its own and SIGKILLs processes for a few minutes, and
  # the cluster suite runs three RabbitMQ nodes: each runs alone, after the rest, so that
  # none slows another down.
  swift test --skip ChaosTests --skip ClusterTests
  swift test --filter ChaosTests
  swift test --filter ClusterTests
fi
