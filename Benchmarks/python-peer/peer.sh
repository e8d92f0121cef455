#!/usr/bin/env bash
# Runs peer.py in its own virtual environment under .build/ (made on first use from PyPI, as
# requirements.txt pins it). Used by `tearsheet-bench peer`; prints what peer.py prints.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${TSYNC_PYTHON_PEER_VENV:-$here/../../.build/python-peer}
if ! "$venv/bin/python" -c "import aio_pika, psycopg" 2>/dev/null; then
  echo "python peer: installing aio-pika and psycopg into $venv" >&2
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt" >&2
fi
exec "$venv/bin/python" "$here/peer.py" "$@"
