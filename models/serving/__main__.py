"""`python -m serving`: run the model server (settings from the environment)."""

import sys

from serving.server import main

sys.exit(main())
