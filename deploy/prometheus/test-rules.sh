#!/usr/bin/env bash
# The alert rules checked (`promtool check rules`) and run against synthetic series
# (`promtool test rules alerts_test.yml`). promtool comes with Debian's prometheus package,
# installed when missing (its service is kept from starting).
set -euo pipefail
cd "$(dirname "$0")"
command -v promtool >/dev/null || ../local/services.sh install prometheus
promtool check rules alerts.yml
promtool test rules alerts_test.yml
