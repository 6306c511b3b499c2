"""``python -m tac_actors ...`` is ``tac-actors ...``."""

import sys

from tac_actors.cli import main

sys.exit(main())
