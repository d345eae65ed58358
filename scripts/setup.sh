#!/usr/bin/env bash
# One-time (and idempotent) set-up on a fresh machine:
#   1. a Python virtual environment with flchain and its dependencies,
#   2. the pinned CometBFT binary, built with `go install` into ./.bin,
#   3. the pinned SeaweedFS binary (./.bin/weed), the object store that models too large for a tx
#      are federated through (localnet.store runs it),
#   4. Python code generated from CometBFT's ABCI protos and from ./proto.
# Prerequisites: Python >= 3.11 and Go >= 1.22 (as for any Cosmos chain; SeaweedFS's build asks for a
# newer Go, which the go command fetches by itself unless GOTOOLCHAIN=local).
# VENV picks the environment's folder (default ./.venv); EXTRAS the pip extras (default
# ml,dev,flower; a validator alone needs none: EXTRAS= installs the chain without torch);
# TORCH_INDEX_URL a PyTorch wheel index to take torch from (e.g. the CPU-only builds of
# https://download.pytorch.org/whl/cpu, a tenth of the default CUDA download).
# Versions come from constraints.txt: the set CI tested (regenerate with scripts/lock.sh).
set -euo pipefail

COMETBFT_VERSION=v0.38.25  # the one place the CometBFT version is pinned
# the one place the SeaweedFS version is pinned: a Go pseudo-version, naming one commit of its repository
SEAWEEDFS_VERSION=v0.0.0-20261109003541-7506e5f91cd6
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${VENV:-$ROOT/.venv}
EXTRAS=${EXTRAS-ml,dev,flower}
cd "$ROOT"

command -v go >/dev/null || { echo "setup: Go is required (https://go.dev/doc/install)" >&2; exit 1; }

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating virtual environment in $VENV"
  python3 -m venv "$VENV"
fi
echo "setup: installing flchain[$EXTRAS] and its dependencies"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
if [ -n "${TORCH_INDEX_URL:-}" ]; then
  "$VENV/bin/python" -m pip install --quiet torch --index-url "$TORCH_INDEX_URL" -c constraints.txt
fi
"$VENV/bin/python" -m pip install --quiet -e ".[$EXTRAS]" -c constraints.txt

if [ "$("$ROOT/.bin/cometbft" version 2>/dev/null)" != "${COMETBFT_VERSION#v}" ]; then
  echo "setup: building CometBFT $COMETBFT_VERSION into .bin/ (a few minutes the first time)"
  GOBIN="$ROOT/.bin" GOFLAGS=-mod=mod go install "github.com/cometbft/cometbft/cmd/cometbft@$COMETBFT_VERSION"
fi

# weed has no version flag that names the commit, so a stamp file records which one .bin/weed was built from.
if [ ! -x "$ROOT/.bin/weed" ] || [ "$(cat "$ROOT/.bin/weed.version" 2>/dev/null)" != "$SEAWEEDFS_VERSION" ]; then
  echo "setup: building SeaweedFS $SEAWEEDFS_VERSION into .bin/ (a few minutes the first time)"
  SEAWEEDFS_DIR=$(go mod download -json "github.com/seaweedfs/seaweedfs@$SEAWEEDFS_VERSION" \
    | "$VENV/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
  rm -f "$ROOT/.bin/weed"  # go build overwrites only a binary it recognises
  (cd "$SEAWEEDFS_DIR" && GOFLAGS=-mod=mod go build -o "$ROOT/.bin/weed" ./weed)
  echo "$SEAWEEDFS_VERSION" > "$ROOT/.bin/weed.version"
fi

echo "setup: generating protobuf code"
"$VENV/bin/python" scripts/gen_proto.py --cometbft-version "$COMETBFT_VERSION"
echo "setup: done ($("$ROOT/.bin/cometbft" version | sed 's/^/cometbft /'), seaweedfs $SEAWEEDFS_VERSION, $("$VENV/bin/python" --version))"
