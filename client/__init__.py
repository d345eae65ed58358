"""flchain clients: the CometBFT RPC client, keys, tx building and signing, the CLI."""
