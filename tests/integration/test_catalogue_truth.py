"""The catalogue as the source of truth, through the real handlers: PUT /items merges fields into the items
table and is served at once, and an item out of stock is served on no surface."""

from __future__ import annotations

from typing import Any

from merchandiser.api import RecommendationPage
from merchandiser.store import CATALOG_VERSION_KEY, OVERLAY_KEY, ItemRecords
from tests.integration.test_serving_api import Call, call  # noqa: F401 (the handlers' fixture)

PUT = ("catalog", "PUT", "/items/{item_id}")


def put(call: Call, item_id: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:  # noqa: F811
    return call(*PUT, f"/items/{item_id}", body=body, params={"item_id": item_id})


def rank(call: Call, item_ids: list[str], user: str = "u000") -> dict[str, Any]:  # noqa: F811
    status, page = call(
        "ranking", "POST", "/users/{user_id}/rank", f"/users/{user}/rank", body={"item_ids": item_ids},
        params={"user_id": user},
    )  # fmt: skip
    assert status == 200, page
    RecommendationPage.model_validate(page)
    return page


def served(call: Call, item_id: str) -> dict[str, list[str]]:  # noqa: F811
    """Every surface's items, over the tiny shop: which lists ``item_id`` could appear on."""
    pages: dict[str, list[dict[str, Any]]] = {}

    def get(name: str, resource: str, path: str, query: str, params: dict[str, str] | None = None) -> None:
        status, page = call("retrieval", "GET", resource, path, query, params=params or {})
        assert status == 200, page
        pages.setdefault(name, []).extend(page["items"])

    for user in ("u000", "u001", "u002", "u003", "u004", "u005", "stranger"):
        get("recommendations", "/users/{user_id}/recommendations", f"/users/{user}/recommendations", "k=20",
            {"user_id": user})  # fmt: skip
        get(
            "candidates",
            "/users/{user_id}/candidates",
            f"/users/{user}/candidates",
            "k=200",
            {"user_id": user},
        )
    for anchor in (f"i{n:02d}" for n in range(0, 45, 3)):
        get("similar", "/items/{item_id}/similar", f"/items/{anchor}/similar", "k=20", {"item_id": anchor})
        get("bought-together", "/items/{item_id}/bought-together", f"/items/{anchor}/bought-together", "k=20",
            {"item_id": anchor})  # fmt: skip
    get("popular", "/items/popular", "/items/popular", "k=48")
    get("popular", "/items/popular", "/items/popular", "k=48&window=24")
    for category in ("shoes", "hats", "bags"):
        get("popular", "/items/popular", "/items/popular", f"k=20&category={category}")
    status, page = call(
        "reranking", "POST", "/users/{user_id}/rerank", "/users/u000/rerank",
        body={"items": [{"item_id": f"i{n:02d}", "score": 1 - n / 50} for n in range(45)], "k": 45},
        params={"user_id": "u000"},
    )  # fmt: skip
    assert status == 200
    pages["rerank"] = page["items"]
    return {name: [entry["item_id"] for entry in items] for name, items in pages.items()}


def test_a_partial_put_merges_into_the_stored_record_and_is_served_at_once(call: Call, aws) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    # Given item i05, known to the model as "Item 5 bags"
    assert rank(call, ["i05"])["items"][0]["title"] == "Item 5 bags"
    # When the retailer renames it, then changes its price alone
    status, renamed = put(call, "i05", {"title": "Travel bag"})
    assert status == 200 and renamed["item"] == {"title": "Travel bag"} and renamed["revision"] == 1
    status, repriced = put(call, "i05", {"price": 99.5})
    # Then the record keeps both, and the new title is served by the next request, no reload
    assert status == 200 and repriced["item"] == {"title": "Travel bag", "price": 99.5}
    assert repriced["revision"] == 2
    assert rank(call, ["i05"])["items"][0]["title"] == "Travel bag"
    record = aws.dynamodb.Table("items").get_item(Key={"item_id": "i05"})["Item"]
    assert record["title"] == "Travel bag" and float(record["price"]) == 99.5 and "first_stored_at" in record
    # And the scan training exports holds the item once, without the overlay and version records
    records = list(ItemRecords(aws.dynamodb, "", "", "items").scan_items())
    assert [r["item_id"] for r in records] == ["i05"]
    keys = {item["item_id"] for item in aws.dynamodb.Table("items").scan()["Items"]}
    assert keys == {"i05", OVERLAY_KEY, CATALOG_VERSION_KEY}


def test_an_item_put_out_of_stock_is_served_on_no_surface_from_the_moment_the_put_answers(
    call: Call,  # noqa: F811
) -> None:
    # Given the best seller (i00: the tiny shop's most bought shoe), served on most surfaces
    before = served(call, "i00")
    assert {name for name, ids in before.items() if "i00" in ids} >= {
        "recommendations", "candidates", "similar", "bought-together", "popular", "rerank"
    }  # fmt: skip
    # When the retailer sets it out of stock, with nothing else
    status, stored = put(call, "i00", {"in_stock": False})
    assert status == 200 and stored["item"] == {"in_stock": False}
    # Then no surface serves it, at once, and pages that had room to spare stay full
    after = served(call, "i00")
    assert {name: "i00" in ids for name, ids in after.items()} == dict.fromkeys(after, False)
    for name in ("recommendations", "similar", "bought-together"):
        assert len(after[name]) == len(before[name]), name
    # And a caller's own list keeps it, last, flagged, its title kept
    page = rank(call, ["i00", "i01", "i02"])
    assert [i["item_id"] for i in page["items"]][-1] == "i00"
    assert page["items"][-1]["reason"] == "out of stock" and page["items"][-1]["in_stock"] is False
    assert page["items"][-1]["title"] == "Item 0 shoes"
    # And back in stock, it is served again at once
    assert put(call, "i00", {"in_stock": True})[0] == 200
    assert "i00" in served(call, "i00")["popular"]
