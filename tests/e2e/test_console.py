"""The staff console in headless Chromium against the twin, through `merchandiser console`'s server.

Chromium is the Debian package (`apt-get install chromium`), driven by Playwright without a browser
download. Each view is screenshotted under build/console/.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from playwright.sync_api import Browser, ConsoleMessage, Page, Response, Route, expect, sync_playwright

from local_twin.console_server import TwinApi, start_console
from local_twin.twin import Twin
from merchandiser.api import ExperimentReport, ExperimentStopped, KpiDocument
from merchandiser.experiments import (
    Period,
    document_period,
    duckdb_query,
    experiment_days,
    kpi_document,
    kpi_rows,
    report,
    write_kpis,
)
from tests.experiment_archive import DAY, HOLDOUT_SPLIT, HOUR, MINUTE, event, impression, write_records

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO_ROOT / "build" / "console"
SECOND = timedelta(seconds=1)
SHOPPER = "console-shopper"  # a shopper of this module's own, so other tests' shoppers stay as they were


@pytest.fixture(scope="module")
def console(twin: Twin) -> Iterator[str]:
    server = start_console(twin.state())  # what `make demo` starts
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = shutil.which("chromium")
    assert chromium, "no chromium on PATH: apt-get update && apt-get install -y chromium"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, headless=True)
        try:
            yield launched
        finally:
            launched.close()


class Problems:
    """What went wrong in the page: uncaught exceptions, console errors, and API answers >= 400."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        self.failed: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))
        page.on("console", self._console)
        page.on("response", lambda r: self.failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)

    def _console(self, message: ConsoleMessage) -> None:
        # a failed fetch is logged by the browser itself; those are in `failed`, with their URL
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(message.text)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        yield context.new_page()
    finally:
        context.close()


# the shopper view's surfaces and the part of the API route each is fetched from
SURFACE_ROUTES = (("home", "/recommendations"), ("popular", "/items/popular"), ("similar", "/similar"))


def open_view(page: Page, console: str, route: str) -> None:
    page.goto(
        "about:blank"
    )  # a fresh document each time: a hash change alone would keep the old view's state
    page.goto(f"{console}#/{route}")
    page.wait_for_selector(f"main[data-ready='{route.split('/')[0]}']", timeout=30_000)


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def known_shopper(twin: Twin) -> str:
    interactions = pd.read_csv(twin.workdir / "shop" / "interactions.csv", dtype=str)
    return str(interactions["user_id"].value_counts().index[0])


def api_json(twin: Twin, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """The twin's API as any client calls it, with the twin's credentials (the console server's own)."""
    data = None if body is None else json.dumps(body).encode()
    status, _, payload = TwinApi(twin.state()).send(method, path, data, {"Content-Type": "application/json"})
    return status, json.loads(payload or b"null")


def eventually(check: Callable[[], Any], what: str, seconds: float = 20.0) -> Any:
    """``check()``'s first truthy answer. Serving reads the catalogue overlay at most every 10 s, so a
    change made through PUT /items shows within that; polled, not slept through."""
    deadline = time.monotonic() + seconds
    while not (answer := check()):
        assert time.monotonic() < deadline, f"{what}: not within {seconds} s"
        time.sleep(0.2)
    return answer


def home_ids(twin: Twin, user: str) -> list[str]:
    status, page = api_json(twin, "GET", f"/users/{user}/recommendations?k=10")
    assert status == 200, page
    return [item["item_id"] for item in page["items"]]


@pytest.fixture(scope="module")
def shopper_with_events(twin: Twin) -> str:
    """A new shopper with three events through POST /events, applied by the stream's processor."""
    items = pd.read_csv(twin.workdir / "shop" / "items.csv", dtype=str)["item_id"].tolist()
    now = datetime.now(UTC)
    events = [
        {
            "user_id": SHOPPER,
            "item_id": item_id,
            "event_type": kind,
            "timestamp": (now - (3 - n) * SECOND).isoformat(),
        }
        for n, (item_id, kind) in enumerate(zip(items[3:6], ("view", "click", "add_to_cart"), strict=True))
    ]
    status, accepted = api_json(twin, "POST", "/events", {"events": events})
    assert status == 202, accepted
    assert twin.poller is not None
    twin.poller.drain()
    return SHOPPER


@pytest.fixture(scope="module")
def stored_kpis(twin: Twin, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The daily job's KPI document over a week of pages on three surfaces, stored where GET /kpis reads."""
    archive = tmp_path_factory.mktemp("archive")
    first = date.today() - timedelta(days=6)
    start = pd.Timestamp(first, tz="UTC").to_pydatetime() + 12 * HOUR
    pages, events = [], []
    for day in range(7):
        for n in range(20 + 3 * day):
            for surface, items in (
                ("home", ["i00001", "i00002"]),
                ("similar", ["i00003"]),
                ("popular", ["i00004"]),
            ):
                page_id = f"{surface}-{day}-{n}"
                served = start + day * DAY + n * MINUTE
                pages.append(impression(page_id, f"u{n}", "", served, items, experiment="", surface=surface))
                if (n + day) % (3 if surface == "home" else 5) == 0:
                    events.append(event(f"c-{page_id}", f"u{n}", items[0], "click", served + MINUTE, page_id))
                if surface == "home" and n % 9 == 0:
                    events.append(
                        event(f"p-{page_id}", f"u{n}", items[0], "purchase", served + HOUR, page_id)
                    )
    write_records(archive, "impressions", pages)
    write_records(archive, "events", events)
    period = document_period(date.today(), days=7)
    assert period.start == first
    document = kpi_document(kpi_rows(duckdb_query(archive), period), period, 150, datetime.now(UTC))
    KpiDocument.model_validate(document)
    write_kpis(twin.client("s3"), twin.state()["artifacts_bucket"], document)
    return document


# --- each view ----------------------------------------------------------------------------------------
def test_the_overview_shows_the_live_model_health_and_stream_without_an_error(
    twin: Twin, console: str, page: Page, shopper_with_events: str
) -> None:
    problems = Problems(page)
    open_view(page, console, "overview")
    expect(page.locator("#model-version")).to_have_text(twin.state()["model_version"])
    expect(page.locator("text=Gate: promoted")).to_be_visible()
    expect(page.locator("text=Serving: ok")).to_be_visible()
    expect(page.locator("#events-per-minute")).not_to_have_text("0")  # the shopper's events, this hour
    screenshot(page, "overview")
    assert problems.errors == [] and problems.failed == []


def test_the_shopper_view_shows_what_the_api_serves_in_the_same_order(
    twin: Twin, console: str, page: Page, shopper_with_events: str
) -> None:
    problems = Problems(page)
    for user in (known_shopper(twin), shopper_with_events):
        # Given the API's answers to the console (each page is served anew: a small share of pages swap
        # two neighbours and exploration draws per page, so a second request may differ by design)
        received: dict[str, Response] = {}

        def keep(response: Response, received: dict[str, Response] = received) -> None:
            for surface, part in SURFACE_ROUTES:
                if part in response.url and response.ok:
                    received[surface] = response

        page.on("response", keep)
        # When the console shows the shopper
        open_view(page, console, f"shopper/{user}")
        page.wait_for_selector(
            "[data-surface='bought-together'] table, [data-surface='bought-together'] .empty"
        )
        page.remove_listener("response", keep)
        # Then each surface lists the items the API answered, in its order
        for surface, _ in SURFACE_ROUTES:
            answer = received[surface].json()
            rows = page.locator(f"[data-surface='{surface}'] tbody tr")
            assert rows.evaluate_all("rows => rows.map(r => r.dataset.itemId)") == [
                item["item_id"] for item in answer["items"]
            ], surface
            assert answer["items"], surface
    # And the new shopper's recent events are beside them, newest first
    events = page.locator("#shopper-events tbody tr")
    expect(events).to_have_count(3)
    expect(events.first).to_contain_text("add_to_cart")
    screenshot(page, "shopper")
    assert problems.errors == [] and problems.failed == []


def test_the_catalogue_finds_items_and_lists_new_ones(twin: Twin, console: str, page: Page) -> None:
    problems = Problems(page)
    # Given an item added through the API since the training
    status, _ = api_json(
        twin,
        "PUT",
        "/items/console-new-1",
        {"title": "Console Linen Scarf", "category": "accessories", "price": 19.5},
    )
    assert status == 200
    eventually(
        lambda: any(
            i["item_id"] == "console-new-1" for i in api_json(twin, "GET", "/items?new=true")[1]["items"]
        ),
        "the new item served",
    )
    open_view(page, console, "catalogue")
    # Then it is among the new items, as added since the training
    expect(page.locator("#new-items tr[data-item-id='console-new-1']")).to_contain_text(
        "added since training"
    )
    # And a search by title words finds it
    page.fill("#item-query", "linen scarf")
    page.click("form.inline button[type=submit]")
    expect(page.locator("#search-results tbody tr").first).to_have_attribute("data-item-id", "console-new-1")
    screenshot(page, "catalogue")
    assert problems.errors == [] and problems.failed == []


def test_the_kpi_view_charts_the_daily_document(
    twin: Twin, console: str, page: Page, stored_kpis: dict[str, Any]
) -> None:
    problems = Problems(page)
    open_view(page, console, "kpis")
    expect(page.locator("#kpi-charts canvas")).to_have_count(3)
    for surface in stored_kpis["surfaces"]:
        expect(page.locator("#kpi-charts table")).to_contain_text(surface)
    screenshot(page, "kpis")
    assert problems.errors == [] and problems.failed == []


def test_the_experiments_view_lists_experiments_without_an_error(
    twin: Twin, console: str, page: Page
) -> None:
    problems = Problems(page)
    open_view(page, console, "experiments")
    expect(page.locator("#experiment-list table, #experiment-list .empty")).to_have_count(1)
    screenshot(page, "experiments")
    assert problems.errors == [] and problems.failed == []


def test_the_experiments_view_shows_a_report_as_the_contract_has_it(
    console: str, page: Page, tmp_path: Path
) -> None:
    # Given the API's answers, made by the project's own report and KPI code over five days of a split
    # (routed in the browser, so that the report is this test's own: the shared twin's archive holds the
    # pages of other tests' experiments)
    definition = HOLDOUT_SPLIT.model_dump(mode="json")
    start = date.today() - timedelta(days=4)
    first_page = pd.Timestamp(start, tz="UTC").to_pydatetime() + 10 * HOUR
    pages, events = [], []
    for day in range(5):
        for user in range(40):
            variant = "personalized" if user % 2 else "holdout"
            page_id = f"r-{day}-{user}"
            served = first_page + day * DAY + user * MINUTE
            pages.append(impression(page_id, f"u{user}", variant, served, ["a", "b"]))
            if (user + day) % (3 if variant == "personalized" else 5) == 0:
                events.append(event(f"c-{page_id}", f"u{user}", "a", "click", served + MINUTE, page_id))
            if variant == "personalized" and (user + day) % 7 == 0:
                events.append(
                    event(f"p-{page_id}", f"u{user}", "a", "purchase", served + HOUR, page_id, price=9.0)
                )
    write_records(tmp_path, "impressions", pages)
    write_records(tmp_path, "events", events)
    generated = {"period": {"start": start.isoformat(), "end": date.today().isoformat()}, "engine": "duckdb"}
    answer = {**report("exp", tmp_path, definition=HOLDOUT_SPLIT), **generated, "generated_at": "2026-11-30"}
    period = Period(start, date.today())
    rows = kpi_rows(duckdb_query(tmp_path), period)
    answer["days"] = experiment_days(kpi_document(rows, period, None, datetime.now(UTC)), "exp")
    ExperimentReport.model_validate(answer)
    sent: list[tuple[str, Any]] = []

    def experiments_api(request_route: Route) -> None:
        request = request_route.request
        sent.append((f"{request.method} {request.url.split('/v1')[1]}", request.post_data_json))
        if request.method == "GET" and request.url.endswith("/v1/experiments"):
            body: Any = {"experiments": [{**definition, "updated_at": "2026-11-30T06:00:00+00:00"}]}
        elif "/report" in request.url:
            body = answer
        elif request.method == "DELETE":
            body = ExperimentStopped(name="exp", status="stopped").model_dump(mode="json")
        else:
            body = request.post_data_json
        request_route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    page.route(re.compile(r".*/v1/experiments.*"), experiments_api)
    problems = Problems(page)
    open_view(page, console, "experiments")
    # When staff open its report
    page.click("#experiment-list button:has-text('report')")
    report_box = page.locator("#experiment-report")
    # Then the per-variant table, the lifts with CI and p-value and the two daily charts are there
    expect(report_box.locator("table").first).to_contain_text("personalized")
    expect(report_box).to_contain_text("ctr")
    expect(report_box).to_contain_text("personalized vs holdout")
    expect(report_box.locator("canvas")).to_have_count(2)
    assert ("GET /experiments/exp/report", None) in sent
    screenshot(page, "experiments-report")
    # And stopping it is DELETE /experiments/{name}
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#experiment-list button:has-text('stop')")
    expect(page.locator("#experiment-list")).to_be_visible()
    page.wait_for_function("() => document.querySelector('#experiment-list .loading') === null")
    assert ("DELETE /experiments/exp", None) in sent
    assert not [request for request, _ in sent if request.startswith("PUT")]
    assert problems.errors == []


# --- what staff do ------------------------------------------------------------------------------------
def test_an_experiment_created_in_the_form_is_in_the_experiment_list(
    twin: Twin, console: str, page: Page, capsys: pytest.CaptureFixture[str]
) -> None:
    name = "console-similar-test"
    open_view(page, console, "experiments")
    page.fill("#experiment-form [name=name]", name)
    page.uncheck("#experiment-form [name=surface][value=home]")
    page.check("#experiment-form [name=surface][value=similar]")  # other tests' experiments take home
    page.click("#experiment-form button[type=submit]")
    expect(page.locator("#form-messages")).to_contain_text(f"Experiment {name} created")
    expect(page.locator("#experiment-list")).to_contain_text(name)
    try:
        from local_twin.cli import main

        state = twin.workdir / "console-state.json"
        state.write_text(json.dumps(twin.state()))
        assert main(["experiment", "list", "--state", str(state)]) == 0
        assert name in capsys.readouterr().out
    finally:
        api_json(twin, "DELETE", f"/experiments/{name}")


def test_the_form_refuses_what_the_api_would_refuse_before_sending_it(console: str, page: Page) -> None:
    # The rules are checked in the page; no request leaves for a definition the API would answer 422
    sent: list[str] = []
    page.on(
        "request", lambda request: sent.append(request.method) if "/v1/experiments/" in request.url else None
    )
    open_view(page, console, "experiments")
    page.fill("#experiment-form [name=name]", "Bad Name")
    page.uncheck("#experiment-form [name=surface][value=home]")
    page.fill("#experiment-form .variant:nth-child(1) [name=share]", "0.7")
    page.click("#experiment-form button[type=submit]")
    messages = page.locator("#form-messages")
    expect(messages).to_contain_text("Not sent")
    expect(messages).to_contain_text("they must sum to 1")
    expect(messages).to_contain_text("choose at least one surface")
    expect(messages).to_contain_text('name "Bad Name"')
    page.click("#experiment-form .variant:nth-child(2) button")  # remove both variants
    page.click("#experiment-form .variant:nth-child(1) button")
    page.fill("#experiment-form [name=name]", "fine-name")
    page.check("#experiment-form [name=surface][value=home]")
    page.click("#experiment-form button[type=submit]")
    expect(messages).to_contain_text("add at least one variant")
    assert sent == []


def test_an_item_set_out_of_stock_in_the_catalogue_leaves_the_shopper_view(
    twin: Twin, console: str, page: Page
) -> None:
    user = known_shopper(twin)
    open_view(page, console, f"shopper/{user}")
    first = page.locator("[data-surface='home'] tbody tr").first.get_attribute("data-item-id")
    assert first
    _, found = api_json(twin, "GET", f"/items?q={first}&k=1")
    original = {key: found["items"][0][key] for key in ("title", "category", "brand", "price", "in_stock")}
    # When staff find it in the catalogue and set it out of stock
    open_view(page, console, "catalogue")
    page.fill("#item-query", first)
    page.click("form.inline button[type=submit]")
    row = page.locator(f"#search-results tr[data-item-id='{first}']")
    row.locator("[name=in_stock]").uncheck()
    row.locator("button", has_text="Save").click()
    expect(row.locator(".status")).to_contain_text("saved")
    try:
        # Then, once serving has read the catalogue overlay, the API leaves it out
        eventually(lambda: (ids := home_ids(twin, user)) and first not in ids, "out of stock")
        # and so does the shopper view, which shows exactly the page the API answered it (each page is
        # served anew: a small share of pages swap two neighbours, so a second request may differ)
        answers: list[Response] = []

        def keep(response: Response) -> None:
            if "/recommendations" in response.url and response.ok:
                answers.append(response)

        page.on("response", keep)
        open_view(page, console, f"shopper/{user}")
        page.remove_listener("response", keep)
        ids = page.locator("[data-surface='home'] tbody tr").evaluate_all(
            "rows => rows.map(r => r.dataset.itemId)"
        )
        served = [item["item_id"] for item in answers[-1].json()["items"]]
        assert served and first not in ids and ids == served
    finally:
        api_json(twin, "PUT", f"/items/{first}", original)


# --- errors are shown, not swallowed --------------------------------------------------------------------
@pytest.mark.parametrize("route", ["overview", "shopper/u1", "experiments", "catalogue", "kpis"])
def test_an_api_failure_is_a_readable_message_never_raw_json_or_a_blank_view(
    console: str, page: Page, route: str
) -> None:
    # Given an API that fails every call: half with its error envelope, half with a non-JSON 502
    def fail(request_route: Route) -> None:
        if "/v1/items" in request_route.request.url or "/v1/model" in request_route.request.url:
            request_route.fulfill(status=502, body="<html>Bad gateway</html>", content_type="text/html")
        else:
            request_route.fulfill(
                status=500,
                content_type="application/json",
                body=json.dumps(
                    {"error": "INTERNAL", "message": "the request could not be served; it has been logged"}
                ),
            )

    page.route(re.compile(r".*/v1/.*"), fail)
    problems = Problems(page)
    open_view(page, console, route)
    # Then every panel that asked the API says which request failed and why, in words
    boxes = page.locator(".error")
    expect(boxes.first).to_be_visible()
    texts = boxes.all_inner_texts()
    assert all(re.search(r"(GET|PUT) /\S+ failed: 50[02]", text) for text in texts), texts
    assert any("could not be served" in text or "without a readable message" in text for text in texts)
    body = page.locator("main").inner_text()
    assert '{"error"' not in body and "<html>" not in body
    assert problems.errors == []


def test_an_unreachable_api_says_so(console: str, page: Page) -> None:
    page.route(re.compile(r".*/v1/.*"), lambda request_route: request_route.abort("connectionrefused"))
    open_view(page, console, "overview")
    expect(page.locator(".error").first).to_contain_text("the API could not be reached")


# --- the AWS mode's request signing -----------------------------------------------------------------------
def test_the_browsers_sigv4_signature_is_botocores(console: str, page: Page) -> None:
    # Given botocore's signature of a request with a session token, a path and a query to encode
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token-1")
    host = "abc123.execute-api.eu-west-1.amazonaws.com"
    url = f"https://{host}/v1/users/u:1@x/events?k=5&q=a%20b&a=z"
    body = '{"title": "Hat"}'
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    request = AWSRequest(method="PUT", url=url, data=body.encode(), headers=headers)
    SigV4Auth(credentials, "execute-api", "eu-west-1").add_auth(request)
    expected = dict(request.headers.items())
    # When the console's signer signs the same request at the same time in the browser
    open_view(page, console, "overview")
    signed = page.evaluate(
        """async ([url, host, body, headers, stamp, credentials]) => {
            const { signRequest } = await import("./aws.js");
            const now = new Date(Date.UTC(+stamp.slice(0, 4), +stamp.slice(4, 6) - 1, +stamp.slice(6, 8),
                +stamp.slice(9, 11), +stamp.slice(11, 13), +stamp.slice(13, 15)));
            const region = "eu-west-1";
            return signRequest({ method: "PUT", url, host, body, headers, region, now, credentials });
        }""",
        [
            "/v1/users/u:1@x/events?k=5&q=a%20b&a=z",
            host,
            body,
            headers,
            expected["X-Amz-Date"],
            {
                "accessKeyId": credentials.access_key,
                "secretAccessKey": credentials.secret_key,
                "sessionToken": credentials.token,
            },
        ],
    )
    # Then both say the same
    assert signed["Authorization"] == expected["Authorization"]
    assert signed["X-Amz-Security-Token"] == expected["X-Amz-Security-Token"]
