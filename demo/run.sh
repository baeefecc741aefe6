#!/usr/bin/env bash
# The README's first command: build agentsec and the example skills, then run
# the bundled demo (demo/secrets.yaml, its demo-only age key, policies/demo.yaml;
# agentsec.yaml at the repository root points agentsec-run at them).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    rustup target add wasm32-wasip2
fi
echo "== building agentsec-run and agentsec (first build: a few minutes, wasmtime is large)"
cargo build --quiet -p agentsec-cli --bins
echo "== building the example skills for wasm32-wasip2"
cargo build --quiet --release --target wasm32-wasip2 \
    --manifest-path example-skills/Cargo.toml --target-dir "$CARGO_TARGET_DIR/skills"

bin="$CARGO_TARGET_DIR/debug"
skills="$CARGO_TARGET_DIR/skills/wasm32-wasip2/release"
# The skills directory (`skills_dir:` in agentsec.yaml): only components
# here are known by name, and only if no one but you (and root) can write it.
mkdir -p demo/skills
chmod 755 demo/skills
cp "$skills/db_healthcheck.wasm" "$skills/release_notes.wasm" \
    "$skills/github_release.wasm" "$skills/discord_notify.wasm" demo/skills/
chmod 644 demo/skills/*.wasm
rm -f demo/audit.log

step() {
    echo
    echo "\$ agentsec-run $*"
    local code=0
    "$bin/agentsec-run" "$@" || code=$?
    echo "(exit $code)"
}

step demo/skills/db_healthcheck.wasm --agent ops/release-manager
step demo/skills/db_healthcheck.wasm --agent ops/changelog
step demo/skills/release_notes.wasm --agent ops/changelog \
    --input '{"repo": "acme/api", "version": "v1.4.0", "changes": ["Faster deploys"]}'
step demo/skills/release_notes.wasm --agent ops/intern

# Credentials the skills never hold (policies/demo-http.yaml, demo/http-secrets.yaml):
# the host injects the GitHub token into github-release's request and puts the webhook
# URL in place of discord-notify's. Against stand-ins of api.github.com and the Discord
# webhook on 127.0.0.1:18787 (demo/stand-ins.py), so the demo stays offline.
echo
echo "== starting the stand-ins of api.github.com and the Discord webhook on 127.0.0.1:18787"
python3 demo/stand-ins.py 18787 &
stand_ins=$!
trap 'kill "$stand_ins" 2>/dev/null || true' EXIT
for _ in $(seq 50); do
    (exec 3<>/dev/tcp/127.0.0.1/18787) 2>/dev/null && break
    sleep 0.1
done
http=(--secrets demo/http-secrets.yaml --policy policies/demo-http.yaml)
step demo/skills/github_release.wasm --agent ops/release-manager "${http[@]}" \
    --input '{"repo": "acme/api", "tag": "v1.4.0", "changes": ["Faster deploys"], "api": "http://127.0.0.1:18787"}'
step demo/skills/discord_notify.wasm --agent ops/changelog "${http[@]}" \
    --input '{"content": "acme/api v1.4.0 is out"}'
step demo/skills/github_release.wasm --agent ops/changelog "${http[@]}" \
    --input '{"repo": "acme/api", "tag": "v1.4.1", "api": "http://127.0.0.1:18787"}'

# The same skill in Python (sdk/python): componentize-py is installed once in .venv-py.
echo
echo "== building the Python twin, py-release-notes (first time: installs componentize-py)"
if [ ! -x .venv-py/bin/componentize-py ]; then
    python3 -m venv .venv-py
    .venv-py/bin/pip install --quiet --disable-pip-version-check --require-hashes \
        -r sdk/python/requirements-build.txt
fi
COMPONENTIZE_PY="$PWD/.venv-py/bin/componentize-py" \
    python3 sdk/python/build.py example-skills/py-release-notes -o demo/skills/py_release_notes.wasm
chmod 644 demo/skills/py_release_notes.wasm
# Its first run compiles an 18 MB component (it says so); a debug build needs more than
# the default 30 s compile deadline on a small machine.
step demo/skills/py_release_notes.wasm --agent ops/changelog --compile-timeout 5m \
    --input '{"repo": "acme/api", "version": "v1.4.0", "changes": ["Faster deploys"]}'

echo
echo "\$ tail -n 2 demo/audit.log    # one hash-chained line per request, never a value"
tail -n 2 demo/audit.log
echo
echo "\$ agentsec-run --show-config    # which agentsec.yaml is in force"
"$bin/agentsec-run" --show-config
echo
echo "\$ agentsec audit verify demo/audit.log"
"$bin/agentsec" audit verify demo/audit.log
