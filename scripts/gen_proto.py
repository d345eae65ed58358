"""Generate Python protobuf code for CometBFT's ABCI protos and flchain's own protos.

CometBFT's .proto files come from the pinned Go module in the module cache (put there by
`go install`), gogoproto's from the version that module requires. Nothing generated is committed:
the output folder is git-ignored and made importable through a .pth file in the environment.
"""

import argparse
import pathlib
import subprocess
import sys
import sysconfig

from proto_codegen import ROOT, WELL_KNOWN, add_init_files, generate_flchain, run_protoc


def go_env(name: str) -> str:
    return subprocess.run(["go", "env", name], check=True, capture_output=True, text=True).stdout.strip()


def gogoproto_dir(modcache: pathlib.Path, cometbft_dir: pathlib.Path) -> pathlib.Path:
    """The cosmos/gogoproto version that the pinned CometBFT module requires."""
    for line in (cometbft_dir / "go.mod").read_text().splitlines():
        parts = line.split()
        if parts and parts[0] == "github.com/cosmos/gogoproto":
            path = modcache / f"github.com/cosmos/gogoproto@{parts[1]}"
            if not path.exists():
                subprocess.run(["go", "mod", "download", f"github.com/cosmos/gogoproto@{parts[1]}"], check=True)
            return path
    raise SystemExit("gogoproto requirement not found in CometBFT's go.mod")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cometbft-version", required=True)
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "_generated")
    args = parser.parse_args()

    modcache = pathlib.Path(go_env("GOMODCACHE"))
    cometbft_dir = modcache / f"github.com/cometbft/cometbft@{args.cometbft_version}"
    if not cometbft_dir.exists():
        subprocess.run(["go", "mod", "download", f"github.com/cometbft/cometbft@{args.cometbft_version}"], check=True)
    includes = [cometbft_dir / "proto", gogoproto_dir(modcache, cometbft_dir), WELL_KNOWN]

    args.out.mkdir(parents=True, exist_ok=True)
    run_protoc(includes, args.out, [gogoproto_dir(modcache, cometbft_dir) / "gogoproto/gogo.proto"], grpc=False)
    # The ABCI types and everything they import (crypto, types, version).
    for sub in ["crypto", "types", "version", "abci"]:
        files = sorted((cometbft_dir / "proto/tendermint" / sub).glob("*.proto"))
        run_protoc(includes, args.out, files, grpc=False)
    add_init_files(args.out)
    generate_flchain(args.out)
    pth = pathlib.Path(sysconfig.get_paths()["purelib"]) / "flchain_generated.pth"
    pth.write_text(f"{args.out.resolve()}\n")
    print(f"generated protobuf code in {args.out} (importable via {pth})", file=sys.stderr)


if __name__ == "__main__":
    main()
