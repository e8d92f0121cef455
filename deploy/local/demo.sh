#!/usr/bin/env bash
# The README's first quick-start command: the whole fleet on this machine against the built-in
# Bullhorn simulator. Installs and starts the local RabbitMQ and PostgreSQL, builds, runs
# `tearsheet-sync demo`, and stops the services it started.
set -euo pipefail
cd "$(dirname "$0")/../.."

deploy/local/services.sh start
trap 'deploy/local/services.sh stop' EXIT
eval "$(deploy/local/services.sh env)"

swift build --product tearsheet-sync
.build/debug/tearsheet-sync demo "$@"
