"""protoc through grpcio-tools: one function for a set of .proto files, one for flchain's own.

Used by scripts/gen_proto.py (everything, at set-up) and by setup.py (flchain's protos, at build)."""

import pathlib

import grpc_tools
from grpc_tools import protoc

ROOT = pathlib.Path(__file__).resolve().parent.parent
FLCHAIN_PROTOS = ROOT / "proto"
WELL_KNOWN = pathlib.Path(grpc_tools.__file__).parent / "_proto"


def run_protoc(includes: list[pathlib.Path], out: pathlib.Path, files: list[pathlib.Path], grpc: bool) -> None:
    args = ["protoc", *(f"-I{p}" for p in includes), f"--python_out={out}", f"--pyi_out={out}"]
    if grpc:
        args.append(f"--grpc_python_out={out}")
    args += [str(f) for f in files]
    if protoc.main(args) != 0:
        raise SystemExit(f"protoc failed on {files[0].parent}")


def add_init_files(out: pathlib.Path) -> None:
    """Packages need __init__.py for tooling that does not handle namespace packages."""
    for d in out.rglob("*"):
        if d.is_dir():
            (d / "__init__.py").touch()


def generate_flchain(out: pathlib.Path) -> None:
    """flchain.v1's messages and gRPC stubs into out/flchain/v1 (they import nothing but protobuf's own)."""
    out.mkdir(parents=True, exist_ok=True)
    run_protoc([FLCHAIN_PROTOS, WELL_KNOWN], out, sorted((FLCHAIN_PROTOS / "flchain/v1").glob("*.proto")), grpc=True)
    (out / "flchain" / "__init__.py").touch()
    add_init_files(out / "flchain")
