"""``python -m minilora`` runs the ``minilora`` command (same arguments, same exit codes)."""

import sys

from minilora.cli import main

sys.exit(main())
