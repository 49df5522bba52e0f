"""``python -m minilora.bench``: the training-step benchmark (see ``minilora/bench/steps.py``)."""

import sys

from minilora.bench.steps import main

sys.exit(main())
