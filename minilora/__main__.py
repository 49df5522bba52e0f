"""``python -m minilora`` runs the ``minilora`` command."""

from minilora.cli import main

main()
