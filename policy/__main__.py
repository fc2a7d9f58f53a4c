"""Entry point the Pulumi engine runs for `--policy-pack policy`: serves the mlplatform rules."""

import sys
from pathlib import Path

# The engine runs this file by path; make the rules package beside it importable.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from mlpolicy.adapter import serve  # noqa: E402

serve()
