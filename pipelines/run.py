"""Runs a tfshop pipeline from a YAML config: ``python pipelines/run.py --config FILE``."""

import argparse
import logging
import sys

import tfshop  # noqa: F401
from tfshop.errors import TfshopError
from tfshop.runner import PipelineConfig, run_pipeline


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", required=True)
    parser.add_argument("--force", action="store_true", help="redo stages whose output exists")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        run_pipeline(PipelineConfig.load(args.config), force=args.force)
    except TfshopError as err:
        print(f"run.py: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
