"""`flchain`: the command line, in the style of a Cosmos chain's CLI.

flchain init | start | show-node-id     one node on this machine (a network of machines)
flchain genesis show-validator|add-validator|add-account|set-model|set-params|validate
                                         the network's shared genesis.json
flchain localnet up|down|status          run N validators on this machine
flchain app | gateway                    one node's flchain processes (`start` runs them beside cometbft)
flchain keys add|list|show|delete|export|import   ed25519 keys, encrypted with a passphrase
flchain tx bond|unbond|submit-update|vote ... [--wait]   sign and broadcast a tx through a node's gateway
flchain query params|round|participant|participants|account|model|candidate|updates|tx [--output json]
                                         read state with ABCI queries through a node's RPC
flchain participant --from KEY ...       run a participant: train when drawn proposer, vote when voter
                                         (--client module:client_fn: any Flower NumPyClient)
flchain demo                             a torch federation with attackers on a 4-validator localnet
flchain federate --client module:client_fn   any Flower client's federation on a 4-validator localnet
flchain simulate run|sweep               in-process federations and parameter studies
"""

import argparse
import sys

from cli import demo, federate, genesis, keys, localnet, node, participate, query, simulate, tx
from client.gateway_client import ChainError
from client.rpc import NodeUnavailable, RPCError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flchain", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (query, keys, tx, genesis, participate, localnet, demo, federate, simulate):
        module.add_parser(sub)
    node.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (NodeUnavailable, RPCError, ChainError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
