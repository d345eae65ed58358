"""One flchain node on its own machine: its home folder, CometBFT config, the shared genesis, and a
supervised start of its three processes (app, cometbft, gateway). The localnet builds on it."""
