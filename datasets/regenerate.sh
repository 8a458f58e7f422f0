#!/bin/sh
# Regenerate every simulated recording in datasets/ and emgtool/data/demo.edf
# (with their .truth.tsv files). Run from anywhere; needs emgtool importable
# (pip install . or PYTHONPATH=<repository root>).
set -e
cd "$(dirname "$0")/.."
exec python -m emgtool.simulate.regenerate --root . "$@"
