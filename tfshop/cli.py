"""``tfshop <stage>``: the command line over the pipeline's stages.

Every user error (a bad file, column, config key) ends with one line on stderr,
``tfshop: error: ...``, and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path

import tfshop  # noqa: F401  (sets the Keras switch before TensorFlow is imported)
from tfshop.config import from_dict, load_yaml
from tfshop.errors import TfshopError


def _config(cls, path: str | None, overrides: dict):
    data = load_yaml(path) if path else {}
    data.update({k: v for k, v in overrides.items() if v is not None})
    return from_dict(cls, data, path or "options")


def cmd_simulate(args) -> None:
    from tfshop.data.simulate import SimulateConfig, simulate

    config = _config(
        SimulateConfig,
        args.config,
        {"events": args.events, "items": args.items, "seed": args.seed, "days": args.days},
    )
    path = simulate(config, args.out, overwrite=args.overwrite)
    print(f"shop written to {path}: {json.loads((path / 'shop.json').read_text())['counts']}")


def cmd_ingest(args) -> None:
    from tfshop.data.sources import ADAPTERS

    options = {"overwrite": args.overwrite}
    if args.attributes:
        if args.format != "sequences":
            raise TfshopError("--attributes applies to --format sequences only")
        options["attributes"] = args.attributes
    if args.max_bad_share is not None:
        if args.format == "sequences":
            raise TfshopError("--max-bad-share applies to the CSV formats (taobao, movielens, table)")
        options["max_bad_share"] = args.max_bad_share
    path = ADAPTERS[args.format](args.input, args.out, **options)
    print(f"shop written to {path}: {json.loads((path / 'shop.json').read_text())['counts']}")


def cmd_prepare(args) -> None:
    from tfshop.data.prepare import PrepareConfig, prepare

    config = _config(PrepareConfig, args.config, {"split": args.split, "history_length": args.history_length})
    beam_options = [f"--runner={args.runner}", *args.beam_options] if args.runner else None
    if beam_options:
        logging.getLogger("apache_beam").setLevel(logging.WARNING)  # its per-bundle worker messages
        logging.getLogger("apache_beam.runners.portability.local_job_service").setLevel(logging.ERROR)
    path = prepare(args.shop, args.out, config, overwrite=args.overwrite, beam_options=beam_options)
    report = json.loads((path / "prepare_report.json").read_text())
    print(f"dataset written to {path}")
    print(f"  examples: {report['examples']}")
    print(f"  quarantined: {sum(report['quarantined'].values())} rows {report['quarantined'] or ''}")
    print(f"  duplicates removed: {report['duplicates_removed']}, bots: {report['bots']}")
    for note in report["notes"]:
        print(f"  note: {note}")


def cmd_inspect(args) -> None:
    from tfshop.data.input_config import InputConfig
    from tfshop.data.pipeline import make_dataset
    from tfshop.data.schema import Schema

    if args.rows <= 0:
        raise TfshopError(f"--rows: {args.rows} must be positive")
    schema = Schema.load(args.dataset)
    print("features:")
    for f in schema.features:
        lookup = f"vocab {f.vocab_size}" if f.vocab else (f"hash {f.hash_buckets}" if f.hash_buckets else "")
        roles = f"roles {', '.join(f.roles)}" if f.roles else ""
        print(f"  {f.name:<20} {f.kind:<12} {f.dtype:<8} {lookup:<12} {roles}".rstrip())
    print("tasks:")
    for t in schema.tasks:
        parent = f" (given {t.parent})" if t.parent else ""
        weight = "model default" if t.weight is None else t.weight
        print(f"  {t.name:<20} {t.type:<12} label={t.label}{parent} weight={weight}")
    dataset = make_dataset(
        args.dataset, args.split, InputConfig(batch_size=args.rows, deterministic=True), schema
    )
    features, labels = next(iter(dataset))
    print(f"first {args.rows} {args.split} rows:")
    for name, values in {**features, **labels}.items():
        print(f"  {name:<20} {values.numpy().tolist()}")


def cmd_pipeline(args) -> None:
    import dataclasses

    from tfshop.pipeline.config import PipelineConfig, check_stages
    from tfshop.pipeline.run import run_pipeline

    config = PipelineConfig.load(args.config)
    stages = args.stages.split(",") if args.stages else config.stages
    try:
        check_stages(stages, "--stages")
    except ValueError as err:
        raise TfshopError(str(err)) from None
    overrides = {
        key: value for key in ("strategy", "warm_start") if (value := getattr(args, key, None)) is not None
    }
    if overrides:
        config = dataclasses.replace(config, train=dataclasses.replace(config.train, **overrides))
    run_pipeline(dataclasses.replace(config, stages=stages), force=args.force)


def cmd_cluster_local(args) -> None:
    from tfshop.training.launch import cluster_tasks, run_cluster

    command = args.command_args[1:] if args.command_args[:1] == ["--"] else args.command_args
    code = run_cluster(cluster_tasks(args.workers, args.ps, command, args.logs))
    if code:
        raise SystemExit(code)


def cmd_cluster_server(args) -> None:
    from tfshop.training.cluster import serve_task

    serve_task()


def cmd_serve(args) -> None:
    from tfshop.serving.server import serve

    serve(args)


def share(text: str) -> float:
    """A share from 0 to 1 (argparse names the flag when this raises)."""
    value = float(text)
    if not 0 <= value <= 1:
        raise ValueError(text)
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tfshop", description=__doc__.splitlines()[0])
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("simulate", help="write a synthetic shop directory")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--config", help="YAML with SimulateConfig keys")
    p.add_argument("--events", type=int)
    p.add_argument("--items", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--days", type=int)
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("ingest", help="convert a real log format into a shop directory")
    p.add_argument("--format", required=True, choices=["taobao", "sequences", "movielens", "table"])
    p.add_argument("input", help="CSV/text file, ml-100k folder, or (table) the YAML mapping")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--attributes", help="sequences: S3-Rec item2attributes.json(.gz)")
    p.add_argument(
        "--max-bad-share",
        type=share,
        help="CSV lines with the wrong number of fields go to the shop's quarantine; fail when a "
        "file has more than this share of them (default 0.01)",
    )
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("prepare", help="shop directory -> dataset directory of TFRecords")
    p.add_argument("--shop", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--config", help="YAML with PrepareConfig keys")
    p.add_argument("--split", choices=["time", "leave_last_out", "given"])
    p.add_argument("--history-length", type=int)
    p.add_argument("--overwrite", action="store_true")
    p.add_argument(
        "--runner",
        help="run as Apache Beam pipelines on this runner (DirectRunner, FlinkRunner, SparkRunner ...); "
        "the arguments after it are Beam's pipeline options",
    )
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("inspect", help="print a dataset's schema and first rows")
    p.add_argument("dataset", type=Path)
    p.add_argument("--split", default="train")
    p.add_argument("--rows", type=int, default=3)
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("pipeline", help="run the stages of a pipeline config in its run directory")
    p.add_argument("--config", required=True)
    p.add_argument("--stages", help="comma-separated stages to run instead of the config's list")
    p.add_argument("--force", action="store_true", help="redo stages whose output exists")
    p.set_defaults(func=cmd_pipeline)

    from tfshop.serving.flags import add_serve_flags

    p = sub.add_parser("serve", help="serve SavedModels over TF Serving's REST and gRPC APIs")
    add_serve_flags(p)
    p.set_defaults(func=cmd_serve)

    from tfshop.pipeline.registry import stages

    for stage in stages().values():
        if stage.name in sub.choices:  # simulate, prepare, serve: commands of their own
            continue
        p = sub.add_parser(stage.name, help=f"{stage.help} (one stage of a pipeline config)")
        p.add_argument("--config", required=True, help="pipeline config (run_dir, model, train, export ...)")
        p.add_argument("--force", action="store_true", help="redo the stage if its output exists")
        if stage.name == "train":
            p.add_argument(
                "--strategy",
                choices=["default", "mirrored", "multi_worker", "parameter_server"],
                help="overrides train.strategy (tfshop cluster local sets it)",
            )
            p.add_argument(
                "--warm-start", help="overrides train.warm_start: an earlier train/model to continue from"
            )
        p.set_defaults(func=cmd_pipeline, stages=stage.name)

    p = sub.add_parser("cluster", help="run a training cluster (tf.distribute, TF_CONFIG)")
    tasks = p.add_subparsers(dest="cluster_command", required=True)
    q = tasks.add_parser(
        "local", help="start workers (and parameter servers) on this machine for one command"
    )
    q.add_argument("--workers", type=int, default=2)
    q.add_argument("--ps", type=int, default=0, help="parameter servers (0: multi-worker mirrored training)")
    q.add_argument(
        "--logs", type=Path, default=Path("runs/cluster-logs"), help="one log file per non-chief task"
    )
    q.add_argument("command_args", nargs=argparse.REMAINDER, help="-- train --config FILE [...]")
    q.set_defaults(func=cmd_cluster_local)
    q = tasks.add_parser(
        "server", help="run this TF_CONFIG's worker or ps task (parameter_server) until killed"
    )
    q.set_defaults(func=cmd_cluster_server)

    return parser


def _exit_on_sigterm(signum, frame) -> None:
    """SIGTERM unwinds like Ctrl-C: the writers' ``with`` blocks remove their temporary output."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "runner", None):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.beam_options = extra
    if threading.current_thread() is threading.main_thread():  # serve sets its own handler
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for noisy in ("tensorflow", "absl"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        args.func(args)
    except TfshopError as err:
        print(f"tfshop: error: {err}", file=sys.stderr)
        return 2
    except (NotADirectoryError, FileExistsError, IsADirectoryError, PermissionError) as err:
        # a path the user gave that cannot be written or read as asked (a file where a folder goes)
        print(f"tfshop: error: {err.filename or ''}: {err.strerror}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tfshop: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
