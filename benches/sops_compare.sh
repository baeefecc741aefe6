#!/usr/bin/env bash
# Times `agentsec secrets decrypt` against the real `sops decrypt` on the same SOPS file with
# 1,000 values (100 services x 10 strings), written by the real sops for the demo recipient.
# Both outputs are checked to be byte-identical first. Uses hyperfine if installed (apt-get
# install hyperfine), else alternates the two commands in a loop and prints medians.
#   benches/sops_compare.sh [RUNS]      (default 30)
# Needs: a release agentsec (built here if missing) and sops ($AGENTSEC_SOPS, .venv-peers, PATH).
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-30}"
target="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release --quiet -p agentsec-cli --bin agentsec
agentsec="$target/release/agentsec"
sops="${AGENTSEC_SOPS:-}"
[ -n "$sops" ] || { [ -x .venv-peers/bin/sops ] && sops="$PWD/.venv-peers/bin/sops"; } || sops="$(command -v sops)"
export SOPS_AGE_KEY_FILE="$PWD/demo/age-key.DEMO-ONLY.txt" SOPS_DISABLE_VERSION_CHECK=1
recipient="$(sed -n 's/^# public key: //p' "$SOPS_AGE_KEY_FILE")"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for i in $(seq -w 0 99); do
    echo "service$i:"
    for j in $(seq 0 9); do echo "    key$j: value-$i-$j-0123456789abcdef"; done
done > "$work/plain.yaml"
"$sops" encrypt --age "$recipient" "$work/plain.yaml" > "$work/secrets.yaml"
rm "$work/plain.yaml"
cmp <("$agentsec" secrets decrypt "$work/secrets.yaml") <("$sops" decrypt "$work/secrets.yaml") \
    || { echo "outputs differ" >&2; exit 1; }
echo "file: $(( $(grep -c 'ENC\[' "$work/secrets.yaml") - 1 )) encrypted values (+ the MAC), $(wc -c < "$work/secrets.yaml") bytes"
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $(uname -sr)"

if command -v hyperfine >/dev/null; then
    hyperfine -N --warmup 3 --runs "$runs" \
        -n agentsec "$agentsec secrets decrypt $work/secrets.yaml" \
        -n sops "$sops decrypt $work/secrets.yaml" \
        --export-json "$work/h.json"
    python3 - "$work/h.json" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print(f"{r['command']:9} median: {r['median'] * 1000:.1f} ms")
PY
    exit 0
fi
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
: > "$work/a"; : > "$work/s"
for _ in $(seq "$runs"); do
    t0=$(date +%s%N); "$agentsec" secrets decrypt "$work/secrets.yaml" > /dev/null; t1=$(date +%s%N)
    "$sops" decrypt "$work/secrets.yaml" > /dev/null; t2=$(date +%s%N)
    echo $(( (t1 - t0) / 1000 )) >> "$work/a"; echo $(( (t2 - t1) / 1000 )) >> "$work/s"
done
echo "agentsec median: $(median < "$work/a") us"
echo "sops     median: $(median < "$work/s") us"
