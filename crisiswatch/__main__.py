"""``python -m crisiswatch ...``: the same command line as ``crisiswatch ...``."""

import sys

from listener.cli import main

sys.exit(main())
