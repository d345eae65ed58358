"""Run N flchain validators (cometbft + app) on 127.0.0.1 from one data folder.

`Localnet` lives in localnet.net; ports, file layout and config defaults in localnet.config.
"""

from localnet.net import Localnet, LocalnetError

__all__ = ["Localnet", "LocalnetError"]
