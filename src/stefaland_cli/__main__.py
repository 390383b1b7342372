"""``python -m stefaland_cli``: the ``stefaland`` command."""

import sys

from . import main

sys.exit(main())
