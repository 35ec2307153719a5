"""The `audiozoo` console command; the commands themselves are in audiozoo/cli.py.

This entry point sits outside the package because `import audiozoo` registers every model family with the
transformers Auto classes, which imports torch and transformers (seconds). The command line parses and checks its
arguments first: the marker below makes this one import of the package defer the registration until `audiozoo.cli`
asks for it (the package removes the marker at once, so no child process inherits it).
"""

from __future__ import annotations

import os

DEFER_MARKER = "AUDIOZOO_DEFER_REGISTRATION"


def main(argv: list[str] | None = None) -> int:
    os.environ[DEFER_MARKER] = "1"
    from audiozoo.cli import main as run

    return run(argv)
