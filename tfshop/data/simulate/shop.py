"""A seeded synthetic shop whose ground truth is known.

Users have latent tastes (a vector in the items' latent space), profile fields that correlate with
them (age band, gender, city tier, a noisy price sensitivity) and an activity level. Items live in
a category tree with brands, prices and attribute words, and their titles and descriptions are
made from those words, so text carries signal. Each session is a search (a query with a known
intent, results from the query's category) or a feed (personal and popular items); it shows
``impressions_per_session`` items, and each impression goes down the funnel
impression -> click -> cart -> purchase with probabilities that are known functions of user, item,
query, position and the user's own recent clicks. Those probabilities are recorded on every row
(``truth_p_click``, ``truth_p_cvr`` = P(purchase | click)) so evaluation can report an oracle.
Search impressions also carry ``query_relevance``: 1 when the shown item is what the query asks
for (the same product type; for a brand query, also the same brand), 0 otherwise.

Users are simulated in chunks and each chunk is written as its own Parquet part, so memory stays
bounded whatever the number of events.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tfshop.config import to_dict
from tfshop.data.simulate import words
from tfshop.data.tables import CATEGORY_SEPARATOR, ShopWriter

log = logging.getLogger(__name__)
LATENT_DIM = 8
START_TIMESTAMP = 1_767_225_600  # 2026-01-01 00:00:00 UTC
FUNNEL_EVENTS_PER_IMPRESSION = 1.06  # impressions plus their clicks, carts, favs and purchases


@dataclass
class SimulateConfig:
    """Size and shape of the synthetic shop."""

    events: int = 200_000
    items: int = 2_000
    seed: int = 0
    days: int = 30
    impressions_per_session: int = 10
    sessions_per_user: float = 5.0
    search_share: float = 0.4
    click_rate: float = 0.04
    cart_rate: float = 0.12
    purchase_rate: float = 0.35
    fav_rate: float = 0.05
    bot_share: float = 0.002
    bot_clicks: int = 400
    chunk_users: int = 20_000

    def validate(self) -> None:
        for name in ("events", "items", "days", "impressions_per_session", "chunk_users"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be positive")
        if self.items < 2:
            raise ValueError("items: a shop needs at least 2 items")
        for name in ("search_share", "click_rate", "cart_rate", "purchase_rate", "fav_rate", "bot_share"):
            value = getattr(self, name)
            if not 0 <= value < 1:
                raise ValueError(f"{name}: must be in [0, 1), got {value}")

    @property
    def users(self) -> int:
        per_user = self.sessions_per_user * self.impressions_per_session
        return max(10, round(self.events / (per_user * FUNNEL_EVENTS_PER_IMPRESSION)))


class Items:
    """Items with their latent vectors, quality and text, drawn from the category tree."""

    def __init__(self, n_items: int, rng: np.random.Generator):
        tops = list(words.CATEGORY_TREE)
        self.leaves = [(top, leaf) for top in tops for leaf in words.CATEGORY_TREE[top]]
        top_centroids = rng.normal(0, 1, (len(tops), LATENT_DIM))
        leaf_offsets = rng.normal(0, 0.5, (len(self.leaves), LATENT_DIM))
        style_vectors = rng.normal(0, 0.4, (len(words.STYLES), LATENT_DIM))
        self.brands = {top: _brand_names(rng, 6) for top in tops}
        brand_premium = {top: rng.lognormal(0, 0.35, 6) for top in tops}
        brand_quality = {top: rng.normal(0, 0.6, 6) for top in tops}

        leaf_share = rng.dirichlet(np.full(len(self.leaves), 2.0))
        self.leaf = rng.choice(len(self.leaves), n_items, p=leaf_share)
        self.top = np.array([tops.index(self.leaves[j][0]) for j in self.leaf])
        self.brand = rng.integers(0, 6, n_items)
        self.style = rng.integers(0, len(words.STYLES), n_items)
        self.colour = rng.integers(0, len(words.COLOURS), n_items)
        self.material = np.array([rng.integers(0, len(words.MATERIALS[tops[t]])) for t in self.top])
        premium = np.array([brand_premium[tops[t]][b] for t, b in zip(self.top, self.brand)])
        base = np.array([words.BASE_PRICE[tops[t]] for t in self.top])
        self.price = np.round(base * premium * rng.lognormal(0, 0.3, n_items), 0) - 0.01
        self.price = np.maximum(self.price, 0.99)
        self.relative_price = np.log(self.price / base) / 0.5
        self.quality = np.array([brand_quality[tops[t]][b] for t, b in zip(self.top, self.brand)])
        self.quality += rng.normal(0, 0.5, n_items)
        self.latent = (
            top_centroids[self.top]
            + leaf_offsets[self.leaf]
            + style_vectors[self.style]
            + rng.normal(0, 0.3, (n_items, LATENT_DIM))
        )
        self.latent /= np.linalg.norm(self.latent, axis=1, keepdims=True)
        self.top_centroids = top_centroids
        self.popularity = rng.zipf(1.6, n_items).clip(max=1000).astype(float)
        self.popularity /= self.popularity.sum()
        self.items_of_leaf = [np.flatnonzero(self.leaf == j) for j in range(len(self.leaves))]
        self.items_of_top = [np.flatnonzero(self.top == t) for t in range(len(tops))]
        self.tops = tops
        self.n = n_items
        self._fillers = rng.integers(0, len(words.DESCRIPTION_FILLERS), n_items)

    def words(self, i: int) -> dict[str, str]:
        top = self.tops[self.top[i]]
        return {
            "top": top,
            "leaf": self.leaves[self.leaf[i]][1],
            "brand": self.brands[top][self.brand[i]],
            "style": words.STYLES[self.style[i]],
            "colour": words.COLOURS[self.colour[i]],
            "material": words.MATERIALS[top][self.material[i]],
        }

    def table(self) -> pd.DataFrame:
        rows = []
        for i in range(self.n):
            w = self.words(i)
            filler = words.DESCRIPTION_FILLERS[self._fillers[i]]
            rows.append(
                {
                    "item_id": f"i{i}",
                    "title": f"{w['brand'].title()} {w['style']} {w['colour']} {w['material']} {w['leaf']}",
                    "description": (
                        f"A {w['style']} {w['leaf']} made of {w['material']} in {w['colour']}, "
                        f"from the {w['brand'].title()} {w['top']} range. {filler}"
                    ).strip(),
                    "category": f"{w['top']}{CATEGORY_SEPARATOR}{w['leaf']}",
                    "brand": w["brand"],
                    "price": float(self.price[i]),
                    "attributes": f"colour={w['colour']};material={w['material']};style={w['style']}",
                }
            )
        return pd.DataFrame(rows)


def _brand_names(rng: np.random.Generator, n: int) -> list[str]:
    names: list[str] = []
    while len(names) < n:
        parts = rng.choice(words.BRAND_SYLLABLES, rng.integers(2, 4))
        name = "".join(parts)
        if name not in names:
            names.append(name)
    return names


@dataclass
class Users:
    """A chunk of users: profile fields (observable) and latent taste (hidden)."""

    ids: np.ndarray
    age: np.ndarray
    gender: np.ndarray
    tier: np.ndarray
    price_sensitivity: np.ndarray
    taste: np.ndarray
    top_preference: np.ndarray
    sessions: np.ndarray
    is_bot: np.ndarray

    def table(self, rng: np.random.Generator) -> pd.DataFrame:
        noisy = np.clip(self.price_sensitivity + rng.normal(0, 0.15, len(self.ids)), 0, 1)
        return pd.DataFrame(
            {
                "user_id": [f"u{i}" for i in self.ids],
                "age_band": np.array(words.AGE_BANDS)[self.age],
                "gender": np.array(words.GENDERS)[self.gender],
                "city_tier": np.array(words.CITY_TIERS)[self.tier],
                "price_sensitivity": np.round(noisy, 1),
            }
        )


class ShopSimulator:
    """Draws the catalogue once, then simulates users chunk by chunk."""

    def __init__(self, config: SimulateConfig):
        self.config = config
        self.rng = np.random.default_rng(config.seed)
        self.items = Items(config.items, self.rng)
        n_tops = len(self.items.tops)
        self.age_top_bias = self.rng.normal(0, 0.8, (len(words.AGE_BANDS), n_tops))
        self.gender_top_bias = self.rng.normal(0, 0.8, (len(words.GENDERS), n_tops))
        self.intercepts = self._calibrate()

    def make_users(self, first: int, n: int, rng: np.random.Generator) -> Users:
        age = rng.integers(0, len(words.AGE_BANDS), n)
        gender = rng.integers(0, len(words.GENDERS), n)
        tier = rng.integers(0, len(words.CITY_TIERS), n)
        logits = (
            self.age_top_bias[age]
            + self.gender_top_bias[gender]
            + rng.normal(0, 1.0, (n, len(self.items.tops)))
        )
        top_pref = np.exp(2 * logits)
        top_pref /= top_pref.sum(axis=1, keepdims=True)
        taste = top_pref @ self.items.top_centroids + rng.normal(0, 0.5, (n, LATENT_DIM))
        taste /= np.linalg.norm(taste, axis=1, keepdims=True)
        sensitivity = 1 / (1 + np.exp(-(rng.normal(0, 1, n) + 0.7 * (tier - 1) - 0.3 * (age - 2))))
        activity = rng.lognormal(0, 0.6, n)
        sessions = 1 + rng.poisson(
            np.maximum(self.config.sessions_per_user - 1, 0) * activity / activity.mean()
        )
        is_bot = rng.random(n) < self.config.bot_share
        return Users(
            np.arange(first, first + n), age, gender, tier, sensitivity, taste, top_pref, sessions, is_bot
        )

    def click_logit(
        self,
        users: Users,
        rows: np.ndarray,
        items: np.ndarray,
        position: np.ndarray,
        match: np.ndarray,
        deal: np.ndarray,
        history: np.ndarray,
    ) -> np.ndarray:
        """The known click score of showing ``items`` to users ``rows`` (before the intercept)."""
        c = self.items
        affinity = np.einsum("ij,ij->i", users.taste[rows], c.latent[items])
        price = c.relative_price[items]
        return (
            2.5 * affinity
            + 0.5 * c.quality[items]
            - (0.4 + 1.2 * users.price_sensitivity[rows] + 0.8 * deal) * price
            + 1.0 * match
            + 0.8 * history
            - 0.4 * np.log1p(position)
        )

    def purchase_logits(
        self, users: Users, rows: np.ndarray, items: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Known cart-given-click and purchase-given-cart scores (before intercepts)."""
        c = self.items
        affinity = np.einsum("ij,ij->i", users.taste[rows], c.latent[items])
        price_pain = users.price_sensitivity[rows] * c.relative_price[items]
        cart = 1.5 * affinity + 0.8 * c.quality[items] - 1.5 * price_pain
        buy = 0.8 * affinity + 0.8 * c.quality[items] - 1.0 * price_pain
        return cart, buy

    def _calibrate(self) -> dict[str, float]:
        """Intercepts that give the configured average funnel rates.

        A pilot of 2,000 users is simulated; each intercept is then solved on the pilot's scores,
        the downstream ones weighted by the chance of reaching that stage. Clicks feed back into
        the click scores through the user's history, so the pilot runs twice.
        """
        intercepts = {"click": -3.0, "cart": 0.0, "buy": 0.0, "fav": 0.0}
        for _ in range(2):
            intercepts = self._solve_intercepts(intercepts)
        return intercepts

    def _solve_intercepts(self, intercepts: dict[str, float]) -> dict[str, float]:
        self.intercepts = intercepts
        rng = np.random.default_rng([self.config.seed, 7_919])
        pilot = self._sessions(self.make_users(0, 2_000, rng), rng)
        pilot = pilot[pilot["stage"] == 0]
        scores = {name: _logit(pilot[f"_p_{name}"].to_numpy()) - intercepts[name] for name in intercepts}
        click = _intercept_for_rate(scores["click"], self.config.click_rate)
        p_click = _sigmoid(click + scores["click"])
        cart = _intercept_for_rate(scores["cart"], self.config.cart_rate, p_click)
        p_cart = p_click * _sigmoid(cart + scores["cart"])
        return {
            "click": click,
            "cart": cart,
            "buy": _intercept_for_rate(scores["buy"], self.config.purchase_rate, p_cart),
            "fav": _intercept_for_rate(scores["fav"], self.config.fav_rate, p_click),
        }

    def simulate_chunk(self, first_user: int, n_users: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Users ``first_user ..`` and all their events, in time order per user."""
        rng = np.random.default_rng([self.config.seed, first_user])
        users = self.make_users(first_user, n_users, rng)
        frames = [self._sessions(users, rng)]
        if users.is_bot.any():
            frames.append(self._bot_bursts(users, rng))
        events = pd.concat(frames, ignore_index=True)
        events = events.sort_values(["user_id", "timestamp", "impression_id", "stage"], kind="stable")
        hidden = ["stage", *[c for c in events.columns if c.startswith("_")]]
        return users.table(rng), events.drop(columns=hidden).reset_index(drop=True)

    def _sessions(self, users: Users, rng: np.random.Generator) -> pd.DataFrame:
        cfg, c = self.config, self.items
        k = cfg.impressions_per_session
        n_users = len(users.ids)
        span = cfg.days * 86_400
        starts = [np.sort(rng.integers(0, span, s)) for s in users.sessions]
        history = np.zeros((n_users, len(c.tops)))
        frames = []
        for round_ in range(int(users.sessions.max())):
            rows = np.flatnonzero(users.sessions > round_)
            session_start = START_TIMESTAMP + np.array([starts[r][round_] for r in rows])
            frames.append(self._one_round(users, rows, session_start, history, rng, k))
        return pd.concat(frames, ignore_index=True)

    def _one_round(self, users, rows, session_start, history, rng, k) -> pd.DataFrame:
        c = self.items
        n = len(rows)
        is_search = rng.random(n) < self.config.search_share
        # Each session's target category: drawn from the user's preferences (search and feed).
        top_cdf = users.top_preference[rows].cumsum(axis=1)
        target_top = (rng.random((n, 1)) > top_cdf).sum(axis=1).clip(max=len(c.tops) - 1)
        items = np.empty((n, k), dtype=np.int64)
        for t in np.unique(target_top):
            sel = np.flatnonzero(target_top == t)
            pool = c.items_of_top[t]
            items[sel] = pool[rng.integers(0, len(pool), (len(sel), k))]
        anchor = items[:, 0]  # the item the query is about, for search sessions
        leaf_pools = [c.items_of_leaf[c.leaf[a]] for a in anchor]
        in_leaf = rng.random((n, k)) < 0.7
        for s in np.flatnonzero(is_search):
            pool = leaf_pools[s]
            items[s, in_leaf[s]] = pool[rng.integers(0, len(pool), in_leaf[s].sum())]
        popular = ~is_search[:, None] & (rng.random((n, k)) < 0.4)
        items[popular] = rng.choice(c.n, popular.sum(), p=c.popularity)

        intents = np.where(is_search, rng.choice(len(words.INTENTS), n, p=words.INTENT_SHARE), -1)
        queries = [self._query(anchor[s], intents[s], rng) if is_search[s] else "" for s in range(n)]
        flat_items = items.ravel()
        flat_rows = np.repeat(rows, k)
        position = np.tile(np.arange(1, k + 1), n)
        match = np.zeros((n, k))
        search = np.flatnonzero(is_search)
        match[search] = c.leaf[items[search]] == c.leaf[anchor[search]][:, None]
        brand_query = search[intents[search] == words.INTENTS.index("brand")]
        same_brand = (c.brand[items[brand_query]] == c.brand[anchor[brand_query]][:, None]) & (
            c.top[items[brand_query]] == c.top[anchor[brand_query]][:, None]
        )
        match[brand_query] += 1.5 * same_brand - 0.5
        deal = np.repeat(intents == words.INTENTS.index("deal"), k).astype(float)
        hist = np.minimum(history[flat_rows, c.top[flat_items]], 3.0) / 3.0
        p_click = _sigmoid(
            self.intercepts["click"]
            + self.click_logit(users, flat_rows, flat_items, position, match.ravel(), deal, hist)
        )
        cart_logit, buy_logit = self.purchase_logits(users, flat_rows, flat_items)
        p_cart = _sigmoid(self.intercepts["cart"] + cart_logit)
        p_buy = _sigmoid(self.intercepts["buy"] + buy_logit)
        p_fav = _sigmoid(self.intercepts["fav"] + cart_logit)

        clicked = rng.random(n * k) < p_click
        carted = clicked & (rng.random(n * k) < p_cart)
        bought = carted & (rng.random(n * k) < p_buy)
        faved = clicked & (rng.random(n * k) < p_fav)
        np.add.at(history, (flat_rows[clicked], c.top[flat_items[clicked]]), 1.0)
        history *= 0.7

        start = np.repeat(session_start, k)
        click_time = start + 3 * position + rng.integers(1, 30, n * k)
        base = pd.DataFrame(
            {
                "user_id": [f"u{u}" for u in users.ids[flat_rows]],
                "item_id": [f"i{i}" for i in flat_items],
                "timestamp": start,
                "behavior": "impression",
                "impression_id": [f"{u}-{t}-{p}" for u, t, p in zip(users.ids[flat_rows], start, position)],
                "query": np.repeat(np.array(queries, dtype=object), k),
                "query_intent": np.repeat(
                    np.array([words.INTENTS[i] if i >= 0 else "" for i in intents], dtype=object), k
                ),
                "query_relevance": np.where(np.repeat(is_search, k), match.ravel() > 0, np.nan),
                "position": position,
                "rating": np.nan,
                "truth_p_click": p_click,
                "truth_p_cvr": p_cart * p_buy,
                "stage": 0,
                "_p_click": p_click,
                "_p_cart": p_cart,
                "_p_buy": p_buy,
                "_p_fav": p_fav,
            }
        )
        affinity = np.einsum("ij,ij->i", users.taste[flat_rows], c.latent[flat_items])
        rating = np.clip(
            np.round(3.2 + 1.5 * affinity + 0.8 * c.quality[flat_items] + rng.normal(0, 0.7, n * k)), 1, 5
        )
        frames = [base]
        for stage, (name, mask, delay) in enumerate(
            [("click", clicked, 0), ("fav", faved, 40), ("cart", carted, 90), ("purchase", bought, 300)], 1
        ):
            part = base[mask].copy()
            part["behavior"] = name
            part["timestamp"] = click_time[mask] + delay
            part["stage"] = stage
            if name == "purchase":
                part["rating"] = rating[mask]
            frames.append(part)
        return pd.concat(frames, ignore_index=True)

    def _query(self, item: int, intent: int, rng: np.random.Generator) -> str:
        name = words.INTENTS[intent]
        templates = words.QUERY_TEMPLATES[name]
        item_words = self.items.words(item)
        budget = int(words.BASE_PRICE[item_words["top"]] * 1.5)
        return templates[rng.integers(len(templates))].format(budget=budget, **item_words)

    def _bot_bursts(self, users: Users, rng: np.random.Generator) -> pd.DataFrame:
        """Scrapers: hundreds of clicks on random items, one a second."""
        frames = []
        n = self.config.bot_clicks
        for r in np.flatnonzero(users.is_bot):
            start = START_TIMESTAMP + int(rng.integers(0, self.config.days * 86_400))
            items = rng.integers(0, self.items.n, n)
            for stage, name in enumerate(("impression", "click")):
                frames.append(
                    pd.DataFrame(
                        {
                            "user_id": f"u{users.ids[r]}",
                            "item_id": [f"i{i}" for i in items],
                            "timestamp": start + np.arange(n),
                            "behavior": name,
                            "impression_id": [f"bot{users.ids[r]}-{j}" for j in range(n)],
                            "query": "",
                            "query_intent": "",
                            "query_relevance": np.nan,
                            "position": 1,
                            "rating": np.nan,
                            "truth_p_click": np.nan,
                            "truth_p_cvr": np.nan,
                            "stage": stage,
                        }
                    )
                )
        return pd.concat(frames, ignore_index=True)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return np.log(p / (1 - p))


def _intercept_for_rate(scores: np.ndarray, rate: float, weights: np.ndarray | None = None) -> float:
    """Bisection for the intercept b with the (weighted) mean of sigmoid(b + scores) == rate."""
    lo, hi = -30.0, 30.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if np.average(_sigmoid(mid + scores), weights=weights) < rate:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def simulate(config: SimulateConfig, out: str | Path, overwrite: bool = False) -> Path:
    """Writes a synthetic shop directory to ``out`` and returns its path."""
    sim = ShopSimulator(config)
    n_users = config.users
    started = time.time()
    bots: list[str] = []
    with ShopWriter(out, overwrite=overwrite) as writer:
        writer.write_items(sim.items.table())
        user_tables = []
        for first in range(0, n_users, config.chunk_users):
            users, events = sim.simulate_chunk(first, min(config.chunk_users, n_users - first))
            writer.write_events(events)
            user_tables.append(users)
            bots += sorted(set(events.loc[events["impression_id"].str.startswith("bot"), "user_id"]))
            log.info(
                "simulated %d/%d users, %d events (%.0fs)",
                min(first + config.chunk_users, n_users),
                n_users,
                writer.counts["events"],
                time.time() - started,
            )
        writer.write_users(pd.concat(user_tables, ignore_index=True))
        return writer.close("simulator", config=to_dict(config), intercepts=sim.intercepts, bot_user_ids=bots)
