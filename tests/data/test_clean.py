import pandas as pd

from tfshop.data.clean import drop_duplicates, find_bots, split_valid_events


def test_malformed_rows_are_set_aside_with_a_reason():
    raw = pd.DataFrame(
        {
            "user_id": ["u1", "", "u3", "u4", "u5", "u6", "u7", "u8", 9.0],
            "item_id": ["i1", "i2", None, "i4", "i5", "i6", "i7", "i8", "i9"],
            "timestamp": ["100", "100", "100", "soon", "-5", "100", "100", "100.5", "100"],
            "behavior": [
                "click",
                "click",
                "click",
                "click",
                "click",
                "teleport",
                "purchase",
                "click",
                "Cart",
            ],
            "rating": ["", "", "", "", "", "", "11", "", "4"],
        }
    )
    good, bad = split_valid_events(raw, 0, 1000, "events")
    assert good["user_id"].tolist() == ["u1", "9"]
    assert good["behavior"].tolist() == ["click", "cart"]
    assert good["rating"].tolist()[1] == 4.0
    assert good["timestamp"].dtype == "int64"
    assert bad["reason"].tolist() == [
        "missing user_id",
        "missing item_id",
        "unparseable timestamp",
        "timestamp out of range",
        "unknown behavior",
        "rating out of range",
        "unparseable timestamp",
    ]
    assert bad["user_id"].tolist() == ["", "u3", "u4", "u5", "u6", "u7", "u8"]


def test_bots_and_duplicates():
    normal = pd.DataFrame(
        {"user_id": "human", "item_id": "i", "timestamp": range(0, 40_000, 100), "behavior": "click"}
    )
    # 500 clicks in 500 seconds across a clock-hour boundary (250 in each hour).
    bot = pd.DataFrame(
        {"user_id": "bot", "item_id": "i", "timestamp": range(3350, 3850), "behavior": "click"}
    )
    shown = bot.assign(behavior="impression")
    events = pd.concat([normal, bot, shown, normal.head(3)], ignore_index=True)
    peaks = find_bots(events, max_actions_per_hour=300)
    assert peaks.to_dict() == {"bot": 500}
    deduped, removed = drop_duplicates(events)
    assert removed == 3
    assert len(deduped) == len(events) - 3
