#!/usr/bin/env bash
# The test command: installs what is missing, starts the local RabbitMQ and PostgreSQL,
# runs every test against them, and stops them again.
set -euo pipefail
cd "$(dirname "$0")/../.."

deploy/local/services.sh start
trap 'deploy/local/services.sh stop' EXIT
eval "$(deploy/local/services.sh env)"
export TSYNC_TEST_AMQP_URL=$TSYNC_AMQP_URL
export TSYNC_TEST_MANAGEMENT_URL=$TSYNC_MANAGEMENT_URL
export TSYNC_TEST_DATABASE_URL=$TSYNC_DATABASE_URL

swift build --build-tests
swift test "$@"
