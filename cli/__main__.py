"""`python -m cli ...` is `flchain ...` (how the localnet starts each node's processes)."""

import sys

from cli.main import main

sys.exit(main())
