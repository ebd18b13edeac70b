"""The built-in dataset: UCI Online Retail (CC BY 4.0), cleaned and split into behaviour tables.

`train/data/online_retail.parquet` holds all 541,909 raw invoice lines. `load_online_retail()` cleans them
as a retailer would (each step counted), keeps one row per purchased invoice line as an interaction, and
derives a users table (country and RFM features) and an items table (price band, keyword category,
description). A config refers to these tables with `path: builtin:online_retail`. Rules and coverage are
documented in `train/data/README.md`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tailsynth.models.errors import DataError

DATA_FILE = Path(__file__).parent / "data" / "online_retail.parquet"
BUILTIN_PREFIX = "builtin:"
BUILTIN_NAME = "online_retail"

RAW_COLUMNS = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID",
               "Country"]
INTERACTION_COLUMNS = ["InvoiceNo", "StockCode", "InvoiceDate", "Quantity", "UnitPrice", "CustomerID"]
PRODUCT_CODE = r"^\d{5}[A-Za-z]*$"
"""Product stock codes: five digits and an optional letter suffix (colour/size variant)."""

PRICE_EDGES = (0.0, 1.0, 2.0, 5.0, 10.0, np.inf)
PRICE_BANDS = ("<1", "1-2", "2-5", "5-10", ">=10")
"""Bands of an item's median UnitPrice in GBP, left-closed: [0, 1) is "<1", [10, inf) is ">=10"."""

# Keyword rules, first match wins (so "CHRISTMAS CANDLE" is christmas). Each keyword is a regex fragment
# matched at the start of a word of the upper-cased description, so CANDLE also matches CANDLES; a
# trailing \b pins a whole word (WICKS?\b must not match WICKER).
CATEGORY_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("christmas", ("CHRISTMAS", "XMAS", "ADVENT", "SANTA", "REINDEER", "SNOWFLAKE", "SNOWMAN", "NATIVITY",
                   "BAUBLE", "STOCKING")),
    ("candles & lighting", ("CANDLE", "T-LIGHT", "TLIGHT", "TEA ?LIGHT", "LANTERN", "LIGHTS?\\b", "LAMP",
                            "INCENSE", "OIL BURNER", "NIGHT ?LIGHT", "LED\\b", "WICKS?\\b", "TORCH")),
    ("bags", ("BAGS?\\b", "HANDBAG", "SHOPPER", "TOTE", "WASHBAG", "BACKPACK", "RUCKSACK")),
    ("jewellery & accessories", ("KEY FOB", "LIP GLOSS", "BATH SPONGE", "PONCHO", "PASSPORT", "NECKLACE",
                                 "EARRING", "BRACELET", "RINGS?\\b", "KEY ?RING", "CHARM", "BEADS?\\b",
                                 "PENDANT", "BROOCH", "HAIR", "DIAMANTE", "PURSE", "WALLET", "UMBRELLA",
                                 "SCARF", "HATS?\\b", "GLOVES?\\b", "JEWEL", "BANGLE", "COMPACT MIRROR",
                                 "SUNGLASSES", "HAND WARMER", "SLIPPER", "POCKET MIRROR")),
    ("toys & games", ("BUILDING BLOCK", "LUDO", "NAUGHTS", "NOUGHTS", "STENCIL", "CLAY", "PAINT SET",
                      "PAINT YOUR", "CANVAS", "GLIDERS?", "TATTOO", "SPORTING", "CREEPY", "SEWING", "CRAFT",
                      "KNITTING", "TOYS?\\b", "GAMES?\\b", "JIGSAW", "PUZZLE", "DOLLS?\\b", "TEDDY",
                      "SOLDIER", "SKIPPING ROPE", "PLAYING CARDS", "DOMINO", "MARBLES", "SPINNING TOP",
                      "YO-YO", "KITES?\\b", "CRAYONS", "COLOURING", "PAINTING SET", "BALLOON", "PLAYHOUSE",
                      "TEA SET", "SNAKES", "SPACEBOY", "PINATA", "BINGO", "DICE", "DINOSAUR", "MAGIC",
                      "BUBBLES", "FELTCRAFT", "STICKER", "CHILDS", "CHILDRENS", "RUBBER DUCK")),
    ("stationery & wrap", ("EXERCISE BOOK", "POSTCARD", "WRITING SET", "CALCULATOR", "RULER", "BLACKBOARD",
                           "BLACK BOARD", "CARDS?\\b", "WRAP", "PAPER", "NOTEBOOK", "NOTE ?BOOK", "PENCIL",
                           "PENS?\\b", "TAPE", "RIBBON", "ENVELOPE", "DIARY", "CALENDAR", "NOTEPAD", "MEMO",
                           "GIFT TAG", "ERASER", "RUBBER", "TISSUE", "BOOKMARK", "SKETCHBOOK", "JOURNAL",
                           "STATIONERY", "SCISSOR", "CRACKER", "CONFETTI", "TAGS?\\b", "SHARPENER",
                           "CLIPBOARD", "ADDRESS BOOK", "ALBUM", "CHALK", "STAMPS?\\b", "BUNTING", "GARLAND",
                           "PARTY")),
    ("kitchen & tableware", ("COOKIE CUTTER", "FRYING PAN", "PANS?\\b", "CONTAINER", "POT W", "MUGS?\\b",
                             "CUPS?\\b", "BOWL", "PLATES?\\b", "CAKE", "CUTLERY", "TEA\\b", "COFFEE",
                             "JARS?\\b", "TRAY", "BAKING", "KITCHEN", "LUNCH", "NAPKIN", "PANTRY", "DISH",
                             "APRON", "JUGS?\\b", "TEAPOT", "SPOON", "FORKS?\\b", "SAUCER", "RECIPE",
                             "CHOPSTICK", "BISCUIT", "PICNIC", "MOULD", "STRAWS?\\b", "BEAKER", "GLASS",
                             "TUMBLER", "EGG CUP", "OVEN GLOVE", "TEA TOWEL", "JAM\\b", "CHOPPING", "COASTER",
                             "PLACEMAT", "SCALES", "BOTTLE", "FOOD", "SUGAR", "MILK", "SWEETIE", "ICE LOLLY",
                             "POPCORN", "DOILY", "DOILIES", "GRINDER", "COLANDER", "SIEVE", "WHISK",
                             "ROLLING PIN", "BREAD", "BUTTER", "SALT", "PEPPER", "WINE", "CHAMPAGNE",
                             "COCKTAIL", "TABLECLOTH", "THERMOS", "FLASK", "CANISTER", "TINS?\\b")),
    ("garden", ("GARDEN", "PLANT", "WATERING", "BIRD ?FEEDER", "BIRD ?HOUSE", "BIRD TABLE", "SEEDS?\\b", "HERB",
                "TROWEL", "GNOME", "OUTDOOR", "WINDMILL", "FLOWER POT", "WIND CHIME", "GREENHOUSE",
                "PARASOL", "HAMMOCK", "DECKCHAIR", "WEATHER")),
    ("home textiles", ("FILLER PAD", "CUSHION", "DOORMAT", "HOT WATER BOTTLE", "BLANKET", "THROW", "TOWEL",
                       "QUILT", "CURTAIN", "PILLOW", "BEDSPREAD", "RUGS?\\b", "MATS?\\b", "FLANNEL", "COSY")),
    ("storage", ("BOX\\b", "BOXES", "BASKET", "TRINKET", "STORAGE", "HAMPER", "CASES?\\b", "CHEST", "DRAWER",
                 "CABINET", "CRATE", "TIDY", "ORGANISER", "HOLDALL", "BUCKET", "PEGS?\\b", "CADDY")),
    ("decor", ("COAT RACK", "MAGAZINE RACK", "STOOL", "PHOTO CUBE", "FRAME", "CLOCK", "MIRROR", "SIGNS?\\b",
               "HOOK", "DECORATION", "WALL", "ORNAMENT", "VASE", "WREATH", "DOORSTOP", "PICTURE", "KNOB",
               "SHELF", "PLAQUE", "BELLS?\\b", "MAGNET", "HANGING", "HEART", "FEATHER", "BUTTERFLY", "DOOR",
               "FLOWER", "ROSE", "BIRD", "HANGER", "STAND", "HOLDER", "SCULPTURE", "FIGURE", "GLOBE",
               "CHANDELIER", "PAINTED", "ART\\b", "METAL", "ZINC", "WOODEN", "TILE", "LETTER", "ALPHABET",
               "NUMBER", "STARS?\\b", "EGG", "EASTER", "CHICK", "BUNNY", "RABBIT", "BLOSSOM", "SHELL",
               "BATHROOM", "SOAP", "DISPLAY")),
)
OTHER_CATEGORY = "other"


@dataclass(frozen=True, eq=False)
class RetailTables:
    """The cleaned built-in dataset: one table per role, plus what each cleaning step dropped."""

    interactions: pd.DataFrame
    """One row per purchased invoice line: INTERACTION_COLUMNS."""
    users: pd.DataFrame
    """One row per CustomerID: Country, recency_days, frequency, monetary."""
    items: pd.DataFrame
    """One row per StockCode: description, price_band, category."""
    cleaning: tuple[dict, ...]
    """{"step", "dropped", "remaining"} per cleaning step, in the order applied."""
    purchases: pd.DataFrame | None = None
    """The cleaned invoice lines with every raw column; row i is `interactions` row i. What
    `training_tables` re-derives the users and items tables from once a split is known."""

    def table(self, role: str) -> pd.DataFrame:
        """The table for a config role ("interactions", "users", "items")."""
        if role not in ("interactions", "users", "items"):
            raise DataError(f"builtin:{BUILTIN_NAME} has no {role!r} table; roles are interactions, users, items")
        return getattr(self, role)


def load_online_retail() -> RetailTables:
    """Read the shipped parquet file, clean it and derive the three tables (a few seconds)."""
    if not DATA_FILE.is_file():
        raise DataError(f"built-in dataset {DATA_FILE} is missing; reinstall tailsynth")
    return tables_from_raw(pd.read_parquet(DATA_FILE, columns=RAW_COLUMNS))


def tables_from_raw(raw: pd.DataFrame) -> RetailTables:
    """Clean raw invoice lines (RAW_COLUMNS) and derive the three tables from all of them."""
    purchases, cleaning = clean_purchases(raw)
    interactions = purchases[INTERACTION_COLUMNS].reset_index(drop=True)
    return RetailTables(
        interactions=interactions,
        users=derive_users(purchases),
        items=derive_items(purchases),
        cleaning=cleaning,
        purchases=purchases,
    )


def clean_purchases(raw: pd.DataFrame) -> tuple[pd.DataFrame, tuple[dict, ...]]:
    """Drop non-purchase rows step by step; return the kept rows and one count dict per step.

    The order matters for the counts (a cancelled line without customer is counted as cancelled).
    """
    steps = (
        ("cancelled invoice (InvoiceNo starts with 'C')", lambda f: ~f["InvoiceNo"].str.startswith("C")),
        ("non-positive Quantity", lambda f: f["Quantity"] > 0),
        ("non-positive UnitPrice", lambda f: f["UnitPrice"] > 0),
        ("missing CustomerID", lambda f: f["CustomerID"].notna()),
        ("non-product StockCode (POST, M, C2, ...)",
         lambda f: f["StockCode"].str.match(PRODUCT_CODE)),
    )
    frame = raw
    cleaning = []
    for name, keep_rule in steps:  # five vectorised filters, not a row loop
        keep = keep_rule(frame).fillna(False).to_numpy(dtype=bool)
        cleaning.append({"step": name, "dropped": int((~keep).sum()), "remaining": int(keep.sum())})
        frame = frame[keep]
    return frame.reset_index(drop=True), tuple(cleaning)


def derive_users(purchases: pd.DataFrame) -> pd.DataFrame:
    """Per customer: most frequent Country (ties: alphabetical), RFM recency/frequency/monetary.

    recency_days: whole days from the customer's last purchase to the last purchase in the dataset.
    frequency: distinct invoices. monetary: total Quantity * UnitPrice in GBP.
    """
    country = _most_frequent(purchases, "CustomerID", "Country")
    spend = purchases["Quantity"] * purchases["UnitPrice"]
    grouped = purchases.assign(spend=spend).groupby("CustomerID", sort=True)
    last = grouped["InvoiceDate"].max()
    recency = (purchases["InvoiceDate"].max() - last).dt.days.astype("int64")
    users = pd.DataFrame({
        "Country": country.reindex(last.index),
        "recency_days": recency,
        "frequency": grouped["InvoiceNo"].nunique().astype("int64"),
        "monetary": grouped["spend"].sum().astype("float64").round(2),
    })
    return users.rename_axis("CustomerID").reset_index()


def derive_items(purchases: pd.DataFrame) -> pd.DataFrame:
    """Per stock code: most frequent (stripped) description, price band of the median price, category."""
    descriptions = purchases.assign(Description=purchases["Description"].str.strip())
    description = _most_frequent(descriptions, "StockCode", "Description")
    median_price = purchases.groupby("StockCode", sort=True)["UnitPrice"].median()
    band = pd.cut(median_price, bins=list(PRICE_EDGES), right=False, labels=list(PRICE_BANDS))
    description = description.reindex(median_price.index)
    items = pd.DataFrame({
        "description": description.astype(object),
        "price_band": band.astype(object),
        "category": categorise(description),
    })
    return items.rename_axis("StockCode").reset_index()


def training_tables(purchases: pd.DataFrame, training: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The users and items tables derived from the training purchases only (`training`: a bool mask over
    `purchases`), so no feature a model or a user choice reads has seen a held-out row (issue 19, part 7).

    Same ids and columns as `derive_users` / `derive_items` on all purchases. recency_days is counted to the
    last training purchase. A customer without a training purchase has frequency 0, monetary 0.0 and the
    whole training period as recency; an item without one (a cold-start item held out of training) keeps
    its description, category and price band from its own rows: catalogue attributes a new item has before
    it sells, not behaviour.
    """
    train = purchases[training]
    users_all, items_all = derive_users(purchases), derive_items(purchases)
    users = derive_users(train).set_index("CustomerID").reindex(users_all["CustomerID"])
    unseen = users["frequency"].isna().to_numpy()
    period = (train["InvoiceDate"].max() - train["InvoiceDate"].min()).days if len(train) else 0
    users["Country"] = users["Country"].where(~unseen, users_all["Country"].to_numpy())
    users["recency_days"] = users["recency_days"].fillna(period).astype("int64")
    users["frequency"] = users["frequency"].fillna(0).astype("int64")
    users["monetary"] = users["monetary"].fillna(0.0).astype("float64")
    items = derive_items(train).set_index("StockCode").reindex(items_all["StockCode"])
    unsold = items["price_band"].isna().to_numpy()
    for column in ("description", "price_band", "category"):  # three columns, not rows
        items[column] = items[column].where(~unsold, items_all[column].to_numpy())
    return users.reset_index(), items.reset_index()


def users_without(users: pd.DataFrame, kept: pd.DataFrame, removed: pd.DataFrame) -> pd.DataFrame:
    """The built-in users table (`training_tables`' users, from the training purchases) as it would be without
    the `removed` purchases: `kept` and `removed` split the training purchases (columns CustomerID,
    InvoiceDate, Quantity, UnitPrice). monetary less the removed spend; frequency less the invoices only
    removed rows made (an invoice read as a customer's purchase time, which is the invoice for 97.5% of the
    built-in customers); recency_days to the last kept purchase. A customer left without a purchase gets
    frequency 0, monetary 0.0 and the kept period as recency, as in `training_tables`. Vectorised."""
    out = users.copy()
    key = out["CustomerID"]
    spend = (removed["Quantity"] * removed["UnitPrice"]).groupby(removed["CustomerID"]).sum()
    out["monetary"] = (out["monetary"] - spend.reindex(key).fillna(0.0).to_numpy()).round(2)
    kept_times = pd.MultiIndex.from_frame(kept[["CustomerID", "InvoiceDate"]])
    gone = removed[["CustomerID", "InvoiceDate"]].drop_duplicates()
    gone = gone[~pd.MultiIndex.from_frame(gone).isin(kept_times)]
    lost = gone.groupby("CustomerID").size()
    out["frequency"] = (out["frequency"] - lost.reindex(key).fillna(0).to_numpy()).astype("int64")
    last = kept.groupby("CustomerID")["InvoiceDate"].max()
    period = (kept["InvoiceDate"].max() - kept["InvoiceDate"].min()).days if len(kept) else 0
    recency = (kept["InvoiceDate"].max() - last).dt.days.reindex(key)
    out["recency_days"] = recency.fillna(period).astype("int64").to_numpy()
    none = ~key.isin(last.index).to_numpy()
    out.loc[none, "frequency"] = 0
    out.loc[none, "monetary"] = 0.0
    return out


def categorise(descriptions: pd.Series) -> pd.Series:
    """Coarse category per description by CATEGORY_RULES (first match wins; "other" if none; vectorised)."""
    text = descriptions.fillna("").astype(str).str.upper()
    matches = [text.str.contains(r"\b(?:" + "|".join(words) + ")", regex=True).to_numpy(dtype=bool)
               for _, words in CATEGORY_RULES]
    names = [name for name, _ in CATEGORY_RULES]
    labels = np.select(matches, names, default=OTHER_CATEGORY)
    return pd.Series(labels.astype(object), index=descriptions.index, name="category")


def _most_frequent(frame: pd.DataFrame, key: str, value: str) -> pd.Series:
    """Most frequent non-null `value` per `key`; ties go to the alphabetically first value."""
    counts = frame.groupby([key, value], sort=False).size().rename("n").reset_index()
    counts = counts.sort_values([key, "n", value], ascending=[True, False, True], kind="mergesort")
    first = counts.drop_duplicates(key, keep="first")
    return first.set_index(key)[value]
