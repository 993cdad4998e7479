#!/usr/bin/env bash
# Builds the JavaScript `local` strategy (local.js) into a WebAssembly component with jco's
# QuickJS backend, against the `strategy` world of wit/strategy.wit (contract 0.2.0):
#
#   strategies/js-local/build.sh
#   -> target/wasm32-wasip2/strategy/js_local.wasm
#
# jco and the author SDK (strategies-js, the `sandgate-strategy` package, copied in rather
# than linked: the component's modules must all live under this directory) come from
# package-lock.json with `npm ci`, run again whenever the lock file or the SDK changed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out_dir="$root/target/wasm32-wasip2/strategy"
out="$out_dir/js_local.wasm"
cd "$here"

if ! command -v npm >/dev/null 2>&1; then
  echo "error: npm not found: the JavaScript strategy is built with jco from npm (Node.js >= 20)." >&2
  exit 127
fi
stamp=node_modules/.package-lock.json
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ] || [ -n "$(find "$root/strategies-js" -newer "$stamp" -type f)" ]; then
  npm ci --no-audit --no-fund
fi
mkdir -p "$out_dir"
# No async (a strategy call is synchronous), WASI stubbed out (the component imports nothing
# but the host's interfaces).
node_modules/.bin/jco componentize local.js --wit "$root/wit" --world-name strategy \
  --backend qjs --backend-qjs-disable-async --backend-qjs-stub-wasi -o "$out"
