#!/usr/bin/env bash
# Builds the Python `local` strategy (app.py) into a WebAssembly component with
# componentize-py, against the `strategy` world of wit/0.1.0/strategy.wit: a component of the
# 0.1.0 contract, uploaded by the tests (the host serves 0.1.0 and 0.2.0 alike).
#
#   strategies/python-local/build.sh
#   -> target/wasm32-wasip2/strategy/python_local.wasm
#
# Needs componentize-py (pip install componentize-py; tested with 0.25.1 on Python 3.11).
# Override the binary with COMPONENTIZE_PY=/path/to/componentize-py.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out_dir="$root/target/wasm32-wasip2/strategy"
out="$out_dir/python_local.wasm"
cpy="${COMPONENTIZE_PY:-componentize-py}"

if ! command -v "$cpy" >/dev/null 2>&1; then
  echo "error: componentize-py not found (looked for \`$cpy\` in PATH)." >&2
  echo "       The Python strategy is compiled to a component by it. Install it with:" >&2
  echo "           pip install componentize-py" >&2
  exit 127
fi

mkdir -p "$out_dir"
cd "$here"
echo "$("$cpy" --version) -> $out"
# -d/-w are global options and must come before the subcommand; -p . finds app.py here.
"$cpy" -d ../../wit/0.1.0 -w strategy componentize app -p . -o "$out"
echo "built $out ($(stat -c %s "$out") bytes)"
