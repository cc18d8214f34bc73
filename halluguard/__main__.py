"""``python -m halluguard`` is the ``halluguard`` command."""

import sys

from halluguard.cli import main

sys.exit(main())
