"""Adapters on the real files in the shared datasets folder, and the generic table mapping."""

import pandas as pd
import pytest

from tests.conftest import real_dataset
from tfshop.data.prepare import PrepareConfig, prepare
from tfshop.data.schema import Schema
from tfshop.data.sources import ingest_movielens, ingest_sequences, ingest_table, ingest_taobao
from tfshop.data.sources.sequences import read_sequences
from tfshop.data.tables import open_shop
from tfshop.errors import ConfigError, DataError


def test_taobao_user_behavior(tmp_path):
    source = real_dataset("taobao_userbehavior_tiny_sample") / "UserBehavior_sample.csv"
    shop = ingest_taobao(source, tmp_path / "shop")
    assert open_shop(shop)["counts"] == {"events": 4321, "items": 3276, "users": 0, "malformed_lines": 0}
    events = pd.read_parquet(shop / "events")
    assert events["behavior"].value_counts().to_dict() == {
        "click": 3926,
        "cart": 190,
        "fav": 128,
        "purchase": 77,
    }
    assert events.iloc[0].to_dict() == {
        "user_id": "1",
        "item_id": "2268318",
        "behavior": "click",
        "timestamp": "1511544070",
    }
    items = pd.read_parquet(shop / "items.parquet").set_index("item_id")
    assert items.loc["2268318", "category"] == "2520377"
    dataset = prepare(
        shop, tmp_path / "dataset", PrepareConfig(min_timestamp=1_511_539_200, max_timestamp=1_512_316_800)
    )
    report = (dataset / "prepare_report.json").read_text()
    assert '"timestamp out of range"' in report  # the sample's out-of-window rows are set aside, counted
    tasks = [t.name for t in Schema.load(dataset).tasks]
    assert tasks == ["cvr", "retrieval"]  # no impressions in this log, so no CTR task


def test_s3rec_sequences_with_attributes(tmp_path):
    folder = real_dataset("amazon_beauty_s3rec")
    shop = ingest_sequences(
        folder / "Beauty.txt.gz",
        tmp_path / "shop",
        attributes=folder / "Beauty_item2attributes.json.gz",
        chunk_users=5_000,
    )
    assert open_shop(shop)["counts"] == {"events": 198_502, "items": 12_101, "users": 0, "malformed_lines": 0}
    events = pd.read_parquet(shop / "events")
    first = events[events["user_id"] == "1"]
    assert first["item_id"].tolist() == ["1", "2", "3", "4", "5"]
    assert first["timestamp"].tolist() == [1, 2, 3, 4, 5]
    assert events.groupby("user_id").size().min() == 5
    items = pd.read_parquet(shop / "items.parquet").set_index("item_id")
    assert items.loc["4", "attributes"] == "attr=1;attr=2;attr=3"


@pytest.mark.parametrize("chunk_users", [7, 100_000])
def test_sasrec_pairs_keep_ranks_across_chunks(tmp_path, chunk_users):
    source = tmp_path / "pairs.txt"
    source.write_text("1 10\n1 11\n2 10\n1 12\n2 13\n3 14\n")
    shop = ingest_sequences(source, tmp_path / "shop", chunk_users=chunk_users)
    events = pd.read_parquet(shop / "events").sort_values(["user_id", "timestamp"])
    assert events[events["user_id"] == "1"][["item_id", "timestamp"]].values.tolist() == [
        ["10", 1],
        ["11", 2],
        ["12", 3],
    ]


def test_dynamicrec_sessions(tmp_path):
    sessions = read_sequences(real_dataset("dynamicrec_session_datasets") / "diginetica.csv.gz")
    assert len(sessions) == 70_756
    assert sessions["1"] == [str(i) for i in range(1, 10)]
    assert sum(map(len, sessions.values())) == 579_478
    assert len({i for s in sessions.values() for i in s}) == 38_970
    assert min(map(len, sessions.values())) == 1  # one-item sessions are sessions too
    (tmp_path / "bad.csv").write_text("1,2\n3,,4\n")
    with pytest.raises(DataError, match=r"bad.csv:2: empty item id"):
        read_sequences(tmp_path / "bad.csv")


def test_sasrec_video_games_leave_last_out(tmp_path):
    source = real_dataset("amazon_video_games_sasrec") / "Video.txt.gz"
    shop = ingest_sequences(source, tmp_path / "shop")
    assert open_shop(shop)["counts"] == {"events": 287_107, "items": 23_715, "users": 0, "malformed_lines": 0}
    dataset = prepare(shop, tmp_path / "dataset", PrepareConfig(split="leave_last_out", history_length=50))
    report = pd.read_json(dataset / "prepare_report.json", typ="series")
    # 112 of the 31,013 users have fewer than 3 actions and stay in train, as in SASRec's split.
    assert report["examples"]["test"] == 31_013 - 112
    assert report["examples"]["valid"] == 31_013 - 112
    assert sum(report["examples"].values()) == 287_107
    assert report["bots"]["users"] == 0


def test_movielens_100k(tmp_path):
    shop = ingest_movielens(real_dataset("movielens_100k"), tmp_path / "shop")
    assert open_shop(shop)["counts"] == {
        "events": 100_000,
        "items": 1_682,
        "users": 943,
        "malformed_lines": 0,
    }
    events = pd.read_parquet(shop / "events")
    assert events.iloc[0].tolist() == ["196", "242", "3", "881250949", "click"]
    items = pd.read_parquet(shop / "items.parquet").set_index("item_id")
    assert items.loc["1", "title"] == "Toy Story (1995)"
    assert items.loc["1", "attributes"] == "genre=Animation;genre=Children's;genre=Comedy"
    users = pd.read_parquet(shop / "users.parquet").set_index("user_id")
    assert users.loc["1"].tolist() == ["18-24", "M", "technician", "8"]


def test_generic_table_mapping(tmp_path):
    (tmp_path / "log.csv").write_text(
        "uid,sku,when,action\n7,A,2026-01-01T00:00:00Z,view\n7,B,2026-01-01T00:01:00Z,order\n8,A,bad,view\n"
    )
    (tmp_path / "products.csv").write_text("sku,name,cost\nA,Red shoe,10\nB,Blue hat,5\n")
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(
        "events:\n  path: log.csv\n"
        "  columns: {user_id: uid, item_id: sku, timestamp: when, behavior: action}\n"
        "  behaviors: {view: click, order: purchase}\n  timestamp_format: iso\n"
        "items:\n  path: products.csv\n  columns: {item_id: sku, title: name, price: cost}\n"
    )
    shop = ingest_table(mapping, tmp_path / "shop")
    events = pd.read_parquet(shop / "events")
    assert events.values.tolist() == [
        ["7", "A", "1767225600", "click"],
        ["7", "B", "1767225660", "purchase"],
        ["8", "A", "bad", "click"],
    ]
    assert pd.read_parquet(shop / "items.parquet")["price"].tolist() == [10.0, 5.0]


@pytest.mark.parametrize(
    "yaml_text, error, message",
    [
        (
            "events:\n  path: log.csv\n  columns: {user: uid}\n",
            ConfigError,
            "unknown canonical column 'user'",
        ),
        (
            "events:\n  path: log.csv\n  columns: {user_id: nope, item_id: sku, timestamp: when}\n"
            "  behavior_value: click\n",
            DataError,
            "log.csv: missing column 'nope' named in the mapping",
        ),
        ("events:\n  path: log.csv\n  colums: {}\n", ConfigError, "unknown key 'colums'"),
        (
            "events:\n  path: missing.csv\n  columns: {user_id: uid}\n  behavior_value: click\n",
            DataError,
            "missing.csv: file not found",
        ),
        (
            "events:\n  path: empty.csv\n  columns: {user_id: uid}\n  behavior_value: click\n",
            DataError,
            "empty.csv: file is empty",
        ),
    ],
)
def test_generic_table_mapping_errors(tmp_path, yaml_text, error, message):
    (tmp_path / "log.csv").write_text("uid,sku,when\n1,A,5\n")
    (tmp_path / "empty.csv").write_text("")
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(yaml_text)
    with pytest.raises(error, match=message):
        ingest_table(mapping, tmp_path / "shop")
    assert not (tmp_path / "shop").exists()


def test_malformed_csv_lines_are_quarantined_up_to_a_share(tmp_path):
    """Real logs have lines with a field too many or too few; the rest of the file is kept."""
    source = real_dataset("taobao_userbehavior_tiny_sample") / "UserBehavior_sample.csv"
    lines = source.read_text().splitlines()
    lines[22] += ",extra,fields"
    lines[40] = "1,2,3"
    broken = tmp_path / "broken.csv"
    broken.write_text("\n".join(lines) + "\n")
    shop = ingest_taobao(broken, tmp_path / "shop")
    assert open_shop(shop)["counts"]["events"] == 4321 - 2
    assert open_shop(shop)["counts"]["malformed_lines"] == 2
    quarantined = pd.read_parquet(shop / "quarantine" / "malformed-lines.parquet")
    assert quarantined["line"].tolist() == [23, 41]
    assert quarantined["text"].tolist() == [lines[22], "1,2,3"]
    assert quarantined["reason"].tolist() == ["expected 5 fields, saw 7", "expected 5 fields, saw 3"]
    with pytest.raises(DataError, match=r"2 of 4321 lines have the wrong number of fields, more than "):
        ingest_taobao(broken, tmp_path / "strict", max_bad_share=0.0001)
    assert not (tmp_path / "strict").exists()
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(
        "events:\n  path: log.csv\n  columns: {user_id: uid, item_id: sku, timestamp: t}\n"
        "  behavior_value: click\n"
    )
    (tmp_path / "log.csv").write_text("uid,sku,t\n" + "u,i,5\n" * 99 + "u,i,5,6\n")
    shop = ingest_table(mapping, tmp_path / "table")
    assert open_shop(shop)["counts"] == {"events": 99, "items": 0, "users": 0, "malformed_lines": 1}


def test_unreadable_sources(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        ingest_taobao(tmp_path / "none.csv", tmp_path / "shop")
    (tmp_path / "one.txt").write_text("1\n")
    with pytest.raises(DataError, match=r"one.txt:1: expected 'user item \.\.\.'"):
        ingest_sequences(tmp_path / "one.txt", tmp_path / "shop")
    with pytest.raises(DataError, match="missing u.data"):
        ingest_movielens(tmp_path, tmp_path / "shop")
    assert not (tmp_path / "shop").exists()
