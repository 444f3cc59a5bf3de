#!/usr/bin/env bash
# Regenerate golden/data, golden/manifest.json and golden/kernel_cases.txt with the pinned reference
# (see golden/README.md).
# Needs python3 (3.11 tested) with venv, and PyPI for the first run. Reads models and photos from ../shared
# beside the checkout, or from $EDGE_CLASSIFY_SHARED.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
if [ ! -x "$venv/bin/python" ]; then
    "${PYTHON:-python3}" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
"$venv/bin/python" "$here/generate.py" "$@"
"$venv/bin/python" "$here/jpeg_decodes.py"
exec "$venv/bin/python" "$here/kernel_oracle.py" "$here/kernel_cases.txt"
