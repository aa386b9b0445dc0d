"""``python -m skae``: the same as the ``skae`` command."""

import sys

from skae._cli import main

sys.exit(main())
