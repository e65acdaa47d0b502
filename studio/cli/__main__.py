"""``python -m studio.cli ...`` (and ``torchrun -m studio.cli train face ...``): the ``studio``
command."""

import sys

from studio.cli import main

sys.exit(main())
