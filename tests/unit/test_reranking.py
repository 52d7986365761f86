from merchandiser.reranking import Rules, Scored, category_cap, rerank


def item(item_id: str, score: float, category: str = "a", in_stock: bool = True) -> Scored:
    return Scored(item_id=item_id, score=score, source="ann", category=category, in_stock=in_stock)


def test_purchased_and_out_of_stock_items_are_filtered():
    # Given a scored list with a purchased and an out-of-stock item
    items = [item("i1", 0.9), item("i2", 0.8, in_stock=False), item("i3", 0.7), item("i4", 0.6)]
    # When re-ranked with i1 excluded
    page = rerank(items, Rules(k=3, exclude=frozenset({"i1"})))
    # Then both are gone and the order is by score
    assert [p.item_id for p in page] == ["i3", "i4"]


def test_duplicates_keep_their_best_score_and_ties_break_by_id():
    items = [item("b", 0.5), item("a", 0.5), item("b", 0.9), item("c", 0.1)]
    page = rerank(items, Rules(k=10))
    assert [p.item_id for p in page] == ["b", "a", "c"]
    assert page[0].score == 0.9


def test_category_cap_spreads_the_page_and_backfills_when_short():
    # Given five items of category x ahead of two of category y
    items = [item(f"x{i}", 1.0 - i / 10, "x") for i in range(5)] + [
        item("y0", 0.2, "y"),
        item("y1", 0.1, "y"),
    ]
    # When at most two per category are allowed on a page of four
    page = rerank(items, Rules(k=4, max_per_category=2))
    # Then the y items rise into the page
    assert [p.item_id for p in page] == ["x0", "x1", "y0", "y1"]
    # And a page longer than the capped supply is backfilled with the best capped items
    assert [p.item_id for p in rerank(items, Rules(k=6, max_per_category=2))][4:] == ["x2", "x3"]


def test_category_page_shows_only_its_category():
    items = [item("x", 0.9, "x"), item("y", 0.8, "y")]
    assert [p.item_id for p in rerank(items, Rules(k=5, category="y"))] == ["y"]


def test_category_cap_is_a_share_with_a_floor_of_two():
    assert category_cap(10) == 3
    assert category_cap(3) == 2
    assert category_cap(100) == 30


def test_same_request_gives_the_same_page():
    items = [item(f"i{i}", (i * 7919) % 13 / 13, str(i % 3)) for i in range(50)]
    rules = Rules(k=10, max_per_category=category_cap(10))
    assert rerank(items, rules) == rerank(list(reversed(items)), rules)
