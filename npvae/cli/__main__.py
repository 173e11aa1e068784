"""``python -m npvae.cli`` runs the command-line interface (as ``python -m npvae`` does)."""
import sys

from . import main

sys.exit(main())
