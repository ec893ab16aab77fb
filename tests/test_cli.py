import signal
import subprocess
import sys
import time

import pytest

from tfshop.cli import build_parser, main


def run(capsys, *argv):
    code = main(["-q", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_simulate_prepare_inspect(tmp_path, capsys):
    code, out, _ = run(
        capsys, "simulate", "--out", str(tmp_path / "shop"), "--events", "8000", "--items", "100"
    )
    assert code == 0 and "shop written to" in out
    code, out, _ = run(capsys, "prepare", "--shop", str(tmp_path / "shop"), "--out", str(tmp_path / "ds"))
    assert code == 0 and "examples: {'train':" in out
    code, out, _ = run(capsys, "inspect", str(tmp_path / "ds"), "--rows", "2")
    assert code == 0
    assert "ctr                  binary       label=click" in out
    history = next(line for line in out.splitlines() if line.strip().startswith("hist_item_ids"))
    assert history.endswith("roles history:item_id")
    assert "cvr                  binary       label=purchase (given ctr)" in out
    assert "first 2 train rows:" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["prepare", "--shop", "{tmp}/nowhere", "--out", "{tmp}/ds"], "nowhere: not a shop directory"),
        (["simulate", "--out", "{tmp}/s", "--config", "{tmp}/bad.yaml"], "bad.yaml: invalid YAML (line 3"),
        (["simulate", "--out", "{tmp}/s", "--config", "{tmp}/typo.yaml"], "typo.yaml: unknown key 'evnts'"),
        (["simulate", "--out", "{tmp}/s", "--events", "-5"], "options.events: must be positive"),
        (["ingest", "--format", "taobao", "{tmp}/empty.csv", "--out", "{tmp}/s"], "empty.csv: file is empty"),
        (["inspect", "{tmp}"], "schema not found"),
        (["inspect", "{tmp}", "--rows", "0"], "--rows: 0 must be positive"),
        (["simulate", "--out", "{tmp}/s", "--items", "1"], "items: a shop needs at least 2 items"),
        (["simulate", "--out", "{tmp}/s", "--config", "{tmp}/latin1.yaml"], "latin1.yaml: not UTF-8 text"),
        (["simulate", "--out", "{tmp}/file/s"], "Not a directory"),
        (["pipeline", "--config", "{tmp}/under_a_file.yaml"], "Not a directory"),
        (["ingest", "--format", "sequences", "{tmp}/latin1.yaml", "--out", "{tmp}/s"], "not UTF-8 text"),
        (["serve", "--model_base_path", "{tmp}/models"], "/models is not a folder"),
        (
            [
                "serve",
                "--model_base_path",
                "{tmp}",
                "--enable_batching",
                "--batching_parameters_file",
                "{tmp}/no",
            ],
            "no: batching parameters file not found",
        ),
    ],
)
def test_user_errors_are_one_line(tmp_path, capsys, argv, message):
    (tmp_path / "bad.yaml").write_text("events: [1,\nseed: 2\n")
    (tmp_path / "typo.yaml").write_text("evnts: 10\n")
    (tmp_path / "latin1.yaml").write_bytes("events: 10 # café\n".encode("latin-1"))
    (tmp_path / "file").write_text("a file, not a folder")
    (tmp_path / "under_a_file.yaml").write_text(f"run_dir: {tmp_path}/file/run\nstages: [simulate]\n")
    (tmp_path / "empty.csv").write_text("")
    code, _, err = run(capsys, *[a.format(tmp=tmp_path) for a in argv])
    assert code == 2
    assert err.startswith("tfshop: error: ") and message in err
    assert err.count("\n") == 1
    assert not (tmp_path / "s").exists() and not (tmp_path / "ds").exists()


def test_console_script_exit_code(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tfshop.cli",
            "prepare",
            "--shop",
            str(tmp_path),
            "--out",
            str(tmp_path / "x"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().endswith("not a shop directory (no shop.json); run simulate or ingest")


def test_help_and_a_config_mistake_do_not_load_tensorflow(tmp_path):
    (tmp_path / "typo.yaml").write_text("evnts: 10\n")
    (tmp_path / "pipeline.yaml").write_text("train:\n  epochs: 0\n")
    script = (
        "import sys\nfrom tfshop.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        f"codes = [main(['simulate', '--out', '{tmp_path}/s', '--config', '{tmp_path}/typo.yaml']),\n"
        f"  main(['prepare', '--shop', 's', '--out', 'd', '--config', '{tmp_path}/typo.yaml']),\n"
        f"  main(['pipeline', '--config', '{tmp_path}/pipeline.yaml'])]\n"
        "print(codes, 'tensorflow' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip().splitlines()[-1] == "[2, 2, 2] False", result.stderr[-2000:]
    assert "unknown key 'evnts'" in result.stderr
    assert "pipeline.yaml.train.epochs: must be positive" in result.stderr


def test_a_port_out_of_range_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["serve", "--model_base_path", "x", "--port", "70000"])
    assert stop.value.code == 2
    assert "argument --port: invalid port value: '70000'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("host", "taken", "front"),
    [
        ("no-such-host.invalid", "--rest_api_port", "REST"),
        ("127.0.0.1", "--rest_api_port", "REST"),
        ("127.0.0.1", "--port", "gRPC"),
    ],
)
def test_a_port_in_use_or_an_unknown_host_is_named(tmp_path, capsys, host, taken, front):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        ports = {"--rest_api_port": "0", "--port": "0", taken: str(busy.getsockname()[1])}
        code, _, err = run(
            capsys,
            "serve",
            "--model_base_path",
            str(tmp_path),
            "--host",
            host,
            *[x for flag, port in ports.items() for x in (flag, port)],
        )
    assert code == 2 and err.startswith(f"tfshop: error: {front}: cannot listen on") and err.count("\n") == 1


GARBAGE = {  # per command: arguments that are wrong in value, not in form
    "simulate": ["--out", "{tmp}/file/out", "--seed", "3"],
    "ingest": ["--format", "sequences", "{tmp}/file", "--out", "{tmp}/out", "--attributes", "{tmp}/nope"],
    "prepare": ["--shop", "{tmp}/file", "--out", "{tmp}/out"],
    "inspect": ["{tmp}/file"],
    "pipeline": ["--config", "{tmp}/file"],
    "serve": ["--model_config_file", "{tmp}/nope", "--model_base_path", "{tmp}"],
    "cluster": ["local", "--", "evaluate", "--config", "{tmp}/file"],
}


def test_every_command_answers_garbage_with_one_line_and_exit_code_2(tmp_path, capsys):
    (tmp_path / "file").write_bytes(b"\x00\xff not a config, a shop or a dataset\n")
    commands = build_parser()._subparsers._group_actions[0].choices
    for command in commands:
        for argv in (
            [command, "--no-such-flag"],
            [command, *GARBAGE.get(command, ["--config", "{tmp}/file"])],
        ):
            argv = [a.format(tmp=tmp_path) for a in argv]
            try:
                code = main(["-q", *argv])
            except SystemExit as stop:  # argparse: usage and one error line
                code = stop.code
            err = capsys.readouterr().err
            assert code == 2, (argv, err)
            assert "Traceback" not in err and "error: " in err, (argv, err)


def test_a_share_or_limit_out_of_range_is_named(capsys, tmp_path):
    with pytest.raises(SystemExit) as stop:
        main(["ingest", "--format", "taobao", "x.csv", "--out", "s", "--max-bad-share", "2"])
    assert stop.value.code == 2
    assert "argument --max-bad-share: invalid share value: '2'" in capsys.readouterr().err
    assert main(["serve", "--model_base_path", str(tmp_path), "--max_connections", "0"]) == 2
    assert capsys.readouterr().err.strip() == "tfshop: error: --max_connections: must be positive, got 0"
    assert main(["serve", "--model_base_path", str(tmp_path), "--shutdown_grace_seconds", "-1"]) == 2
    assert (
        capsys.readouterr().err.strip() == "tfshop: error: --shutdown_grace_seconds: must be >= 0, got -1.0"
    )


def test_overwrite_replaces_only_what_tfshop_wrote_and_stale_temporaries_go(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.txt").write_text("years of work")
    code, _, err = run(capsys, "simulate", "--out", str(mine), "--overwrite", "--events", "2000")
    assert code == 2 and "mine: not a shop directory (no shop.json); not replaced" in err
    assert (mine / "thesis.txt").read_text() == "years of work"
    stale = tmp_path / ".shop.tmp-deadbeef"
    stale.mkdir()
    assert run(capsys, "simulate", "--out", str(tmp_path / "shop"), "--events", "2000")[0] == 0
    assert not stale.exists() and (tmp_path / "shop" / "shop.json").is_file()


def test_sigterm_removes_the_output_under_construction(tmp_path):
    out = tmp_path / "shop"
    command = [sys.executable, "-m", "tfshop.cli", "simulate", "--out", str(out), "--events", "3000000"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".shop.tmp-*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(tmp_path.glob(".shop.tmp-*")), "the run never started writing"
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 128 + signal.SIGTERM
    assert not list(tmp_path.glob(".shop.tmp-*")) and not out.exists()
