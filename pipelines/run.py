"""Runs a tfshop pipeline from a YAML config: ``python pipelines/run.py --config FILE [--force]``.

The same as ``tfshop pipeline --config FILE``; see that command's ``--help`` for every option.
"""

import sys

from tfshop.cli import main

if __name__ == "__main__":
    sys.exit(main(["pipeline", *sys.argv[1:]]))
