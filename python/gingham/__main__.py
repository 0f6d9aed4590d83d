"""``python -m gingham`` runs the command line (the same as the ``gingham`` script)."""
from .cli import main

raise SystemExit(main())
