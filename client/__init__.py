"""The SDK any program uses to talk to a flchain chain: keys, txs and signing, nonce tracking, the gateway
and CometBFT RPC clients, default endpoints, and an in-process chain for tests and experiments."""
