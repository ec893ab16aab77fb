"""The ``serve`` stage: the export served by ``tfshop serve`` and queried over REST and gRPC."""

from tfshop.pipeline.registry import stage


@stage("serve", "serve the export and query it over REST and gRPC")
def serve(run, rows: int = 5) -> None:
    if run.config.next_item is not None:
        from tfshop.pipeline import next_item

        next_item.serve(run)
        return
    from tfshop.pipeline.checks import check_same_scores, exported_and_expected, row_labels
    from tfshop.serving.client import connect
    from tfshop.serving.process import server_process

    export, inputs, expected = exported_and_expected(run, rows)
    labels = row_labels(run, inputs)
    name, version = export.parent.name, int(export.name)
    with server_process(export.parent, name, run.dir / "serve.log") as (rest_url, grpc_url):
        print(f"\nserving {export.parent} as {name!r}: REST {rest_url}, gRPC {grpc_url}")
        answers = {}
        for url in (rest_url, grpc_url):
            with connect(url, name) as client:
                client.wait_until_available(version)
                answers[url.split(":")[0]] = client.predict(inputs, version=version)
    for protocol, served in answers.items():
        check_same_scores(served, expected, protocol)
    names = [k for k in sorted(expected) if expected[k].shape[-1] == 1]
    print(f"scores of {rows} test rows, as served (version {version}) over each protocol:")
    print(f"  {'item':>8} {'via':>5}" + "".join(f"{n:>10}" for n in names))
    for i in range(rows):
        for protocol, served in answers.items():
            print(f"  {labels[i]:>8} {protocol:>5}" + "".join(f"{served[n][i, 0]:>10.4f}" for n in names))
    print("server stopped; start it yourself with:")
    print(f"  tfshop serve --model_name {name} --model_base_path {export.parent} \\")
    print("      --rest_api_port 8501 --port 8500")
