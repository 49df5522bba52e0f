"""``python -m minilora.bench``: the same as ``minilora bench`` (the options are the CLI's,
``minilora/cli/bench.py``)."""

import sys

from minilora.cli import main

sys.exit(main(["bench", *sys.argv[1:]]))
