"""MovieLens 100K (``u.data``, ``u.item``, ``u.user`` from the GroupLens ml-100k folder).

Every rating becomes a ``click`` event carrying its ``rating``; movies become items whose title
is the movie title, whose category is the first listed genre and whose attributes list all
genres; users keep age band, gender, occupation and zip prefix as profile fields.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tfshop.data.sources.files import existing_file, read_table
from tfshop.data.tables import ShopWriter
from tfshop.errors import DataError

GENRES = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)
AGE_BANDS = [(0, "under-18"), (18, "18-24"), (25, "25-34"), (35, "35-44"), (45, "45-54"), (55, "55+")]


def ingest_movielens(
    source: str | Path, out: str | Path, overwrite: bool = False, max_bad_share: float = 0.01
) -> Path:
    """Converts an ml-100k folder into a shop directory."""
    folder = Path(source)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder (expected the ml-100k folder with u.data)")
    data = _find(folder, "u.data")
    with ShopWriter(out, overwrite, max_bad_share) as writer:
        names = ["user_id", "item_id", "rating", "timestamp"]
        ratings = read_table(data, sep="\t", names=names, malformed=writer.malformed)
        ratings["behavior"] = "click"
        writer.write_events(ratings)
        writer.write_items(_items(_find(folder, "u.item")))
        writer.write_users(_users(_find(folder, "u.user")))
        return writer.close("movielens", input=str(folder))


def _find(folder: Path, name: str) -> Path:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return existing_file(candidate)
    raise DataError(f"{folder}: missing {name} (or {name}.gz)")


def _items(path: Path) -> pd.DataFrame:
    names = ["item_id", "title", "release_date", "video_release_date", "url", *GENRES]
    movies = read_table(path, sep="|", names=names, encoding="latin1")
    flags = movies[list(GENRES)] == "1"
    genres = flags.apply(lambda row: [g for g in GENRES if row[g]], axis=1)
    return pd.DataFrame(
        {
            "item_id": movies["item_id"],
            "title": movies["title"],
            "category": genres.map(lambda g: g[0] if g else "unknown"),
            "attributes": genres.map(lambda g: ";".join(f"genre={x}" for x in g)),
        }
    )


def _users(path: Path) -> pd.DataFrame:
    users = read_table(path, sep="|", names=["user_id", "age", "gender", "occupation", "zip"])
    age = pd.to_numeric(users["age"], errors="coerce")
    band = pd.Series("unknown", index=users.index)
    for low, name in AGE_BANDS:
        band[age >= low] = name
    return pd.DataFrame(
        {
            "user_id": users["user_id"],
            "age_band": band,
            "gender": users["gender"],
            "occupation": users["occupation"],
            "zip_prefix": users["zip"].str[:1],
        }
    )
