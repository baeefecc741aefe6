#!/usr/bin/env bash
# The same skill (release-notes) written in Rust, Python and JavaScript, run by the release
# agentsec-run side by side in one run: component size, first run (compile, cold cache), and
# the median wall time and peak RSS of warm runs (compiled code from the cache).
#   benches/languages.sh [RUNS]      (default 10)
# Needs: the toolchains tests/run.sh installs (.venv-py, sdk/js/node_modules).
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-10}"
target="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release --quiet --workspace --bins
run="$target/release/agentsec-run"
cargo build --release --quiet --target wasm32-wasip2 \
    --manifest-path example-skills/Cargo.toml --target-dir "$target/skills"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/skills"
cp "$target/skills/wasm32-wasip2/release/release_notes.wasm" "$work/skills/"
COMPONENTIZE_PY="${COMPONENTIZE_PY:-$PWD/.venv-py/bin/componentize-py}" \
    python3 sdk/python/build.py example-skills/py-release-notes -o "$work/skills/py_release_notes.wasm" 2>/dev/null
if [ -f sdk/js/build.mjs ] && [ -d sdk/js/node_modules ]; then
    node sdk/js/build.mjs example-skills/js-release-notes -o "$work/skills/js_release_notes.wasm" 2>/dev/null
fi
export SOPS_AGE_KEY_FILE="$PWD/demo/age-key.DEMO-ONLY.txt"
input='{"repo": "acme/api", "version": "v1.4.0", "changes": ["Faster deploys"]}'
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $(uname -sr); runs: $runs"
printf '| skill | component | first run (compile) | peak RSS | warm run (median) | peak RSS |\n|---|---|---|---|---|---|\n'
one() { # CACHE WASM -> "seconds kilobytes"
    XDG_CACHE_HOME="$1" /usr/bin/time -f '%e %M' -o "$work/t" \
        "$run" "$2" --skills "$work/skills" --agent ops/changelog --input "$input" \
        --secrets demo/secrets.yaml --policy policies/demo.yaml --audit-log "$work/audit.log" \
        --compile-timeout 10m >/dev/null 2>&1
    cat "$work/t"
}
for wasm in "$work"/skills/*.wasm; do
    name="$(basename "$wasm" .wasm)"
    cache="$work/cache-$name"
    read -r first first_kb < <(one "$cache" "$wasm")
    times=(); kbs=()
    for _ in $(seq "$runs"); do
        read -r t kb < <(one "$cache" "$wasm")
        times+=("$t"); kbs+=("$kb")
    done
    median="$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')"
    peak="$(printf '%s\n' "${kbs[@]}" | sort -n | tail -1)"
    size="$(du -k "$wasm" | cut -f1)"
    printf '| %s | %s KiB | %s s | %s MiB | %s s | %s MiB |\n' "${name//_/-}" "$size" "$first" \
        "$((first_kb / 1024))" "$median" "$((peak / 1024))"
done
