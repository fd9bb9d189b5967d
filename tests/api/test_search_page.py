"""The search page (GET /) and the offline /docs in a real headless browser against a real uvicorn server.

Needs Debian's ``chromium`` and ``chromium-driver`` (``make browser`` installs them as root) and the ``selenium``
package; skipped with the reason when they are missing, failed instead when ``CI=true``. Selenium is handed
/usr/bin/chromedriver, so Selenium Manager never runs (it would try to download a driver).

Every request the browser makes is read from Chrome's performance log: none may leave the test server.
``LEGALSEARCH_SCREENSHOT_DIR=docs/figures`` also writes the README's screenshot (search-page.png).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from servers import uvicorn_server

QUERY = "Kündigung wegen Eigenbedarf"
WAIT_S = 30

CHROME_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--window-size=1280,1000", "--lang=de-DE",
)


def _missing(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI=true requires it (make browser installs it)")
    pytest.skip(reason)


def _binaries() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        _missing("chromium and chromedriver are not installed (apt-get install chromium chromium-driver)")
    assert browser is not None and driver is not None
    return browser, driver


class Browser:
    """A headless Chromium under Selenium that records the URL of every request it makes."""

    def __init__(self, tmp: Path) -> None:
        browser, driver = _binaries()
        try:
            from selenium import webdriver
            from selenium.webdriver.chrome.service import Service
        except ImportError:
            _missing("the selenium package is not installed (pip install -e '.[dev]')")
        options = webdriver.ChromeOptions()
        options.binary_location = browser
        for flag in (*CHROME_FLAGS, f"--user-data-dir={tmp}"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(executable_path=driver), options=options)
        # the browser's own start page loads chrome:// resources: not the pages under test
        self.driver.get("about:blank")
        self.driver.get_log("performance")
        self.requested: list[str] = []
        self.console: list[dict[str, Any]] = []

    def collect(self) -> None:
        """Move the requests logged since the last call into ``requested`` (reading drains the log)."""
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message.get("method") == "Network.requestWillBeSent":
                self.requested.append(message["params"]["request"]["url"])
        self.console.extend(self.driver.get_log("browser"))

    def wait(self, condition: Any, what: str) -> Any:
        from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
        from selenium.webdriver.support.ui import WebDriverWait

        # the page replaces its lists when an answer arrives: an element found just before is stale, ask again
        wait = WebDriverWait(self.driver, WAIT_S, poll_frequency=0.1,
                             ignored_exceptions=(StaleElementReferenceException,))
        try:
            return wait.until(condition)
        except TimeoutException:
            self.collect()
            pytest.fail(f"timed out waiting for {what}; url {self.driver.current_url}; console {self.console}")

    def css(self, selector: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return list(self.driver.find_elements(By.CSS_SELECTOR, selector))

    def visible(self, selector: str) -> list[Any]:
        return [e for e in self.css(selector) if e.is_displayed()]

    def wait_visible(self, selector: str) -> list[Any]:
        return self.wait(lambda d: self.visible(selector) or False, f"a visible {selector}")

    def state(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.driver.current_url).query)

    def quit(self) -> None:
        self.driver.quit()


@pytest.fixture(scope="module")
def server(demo_models_dir: Path) -> Iterator[str]:
    with uvicorn_server(demo_models_dir) as base:
        yield base


@pytest.fixture
def browser() -> Iterator[Browser]:
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        b = Browser(Path(profile))
        try:
            yield b
        finally:
            b.quit()


def _offers(base: str, path: str) -> bool:
    """Whether the server's OpenAPI description has this path (endpoints other parts of the API add)."""
    return path in httpx.get(f"{base}/openapi.json").json()["paths"]


def _only_local(browser: Browser, base: str) -> None:
    browser.collect()
    assert browser.requested, "the performance log recorded no requests"
    local = (base + "/", "blob:" + base + "/", "data:")
    foreign = [u for u in browser.requested if not u.startswith(local)]
    assert foreign == [], f"requests left {base}: {foreign}"
    # answers with an error status (a 404 of an absent endpoint, a 401) show as "network" entries: expected
    errors = [e for e in browser.console if e.get("level") == "SEVERE" and e.get("source") != "network"]
    assert errors == [], f"script errors: {errors}"


def test_search_facet_document_and_back(browser: Browser, server: str) -> None:
    from selenium.webdriver.common.keys import Keys

    driver = browser.driver
    driver.get(server + "/")
    box = browser.wait_visible("#q")[0]
    assert browser.visible("#home-view"), "the start page shows without a query"

    box.send_keys(QUERY[:5])
    expected = httpx.get(f"{server}/suggest", params={"q": QUERY[:5], "k": 8}).json()["suggestions"]
    assert expected
    browser.wait(lambda d: _suggested(browser) == [s["text"] for s in expected], "the suggestions of the API")
    box.send_keys(QUERY[5:], Keys.ENTER)

    first_page = _check_results(server, browser)
    _screenshot(browser)
    _next_page(server, browser)
    driver.back()
    browser.wait(lambda d: "page" not in browser.state() and _page_ids(browser) == first_page, "page 1 after back")

    results_url = _narrow_by_facet(server, browser)

    # the document view is checked with citations both ways: the first narrowed hit that has them
    links = browser.visible("#results .hit h2 a")
    first = next((a for a in links if _cites_both_ways(server, a.get_attribute("data-doc") or "")), None)
    assert first is not None, "one of the narrowed hits cites and is cited"
    title = first.text
    doc_id = first.get_attribute("data-doc")
    first.click()
    heading = browser.wait_visible("#doc-view h1")[0]
    assert heading.text == title
    assert browser.state()["doc"] == [doc_id]
    assert browser.visible("#doc-view .doc-text")[0].text.strip()
    assert browser.visible("#doc-view .keywords .chip")
    recs = browser.wait_visible("#doc-view .recommendations li a")
    assert doc_id not in [r.get_attribute("data-doc") for r in recs], "a document does not recommend itself"
    _check_citations(server, browser, doc_id)
    assert not browser.visible("#results-view")

    driver.back()
    browser.wait(lambda d: d.current_url == results_url, "the results URL after back")
    browser.wait_visible("#results .hit")
    assert not browser.visible("#doc-view")
    assert browser.visible("#q")[0].get_attribute("value") == QUERY
    _only_local(browser, server)


def _page_ids(browser: Browser) -> list[str]:
    return [a.get_attribute("data-doc") for a in browser.visible("#results .hit h2 a")]


def _check_results(server: str, browser: Browser) -> list[str]:
    """The page shows the API's hits with marked snippets, explanations, the number of matches, related terms.

    Returns the ids of the hits shown."""
    browser.wait_visible("#results .hit")
    assert browser.state()["q"] == [QUERY]
    answer = httpx.get(f"{server}/search", params={"q": QUERY, "k": 10, "facets": "type"}).json()
    assert _page_ids(browser) == [h["id"] for h in answer["results"]]
    assert [a.text for a in browser.visible("#results .hit h2 a")] == [h["title"] for h in answer["results"]]
    marks = browser.css("#results .snippet mark")
    assert marks and all(m.text for m in marks), "snippets mark the matched terms"
    assert any("eigenbedarf" in m.text.lower() for m in marks)
    assert "<mark>" not in browser.driver.find_element("id", "results").text, "marks are elements, not text"
    total = sum(f["count"] for f in answer["facets"]["type"])
    assert browser.visible("#result-info")[0].text.startswith(f"Treffer 1–10 von {total}")
    why = browser.visible("#results .hit details.why")[0]
    why.find_element("css selector", "summary").click()
    assert "Gemeinsame Schlüsselwörter" in why.text
    related = browser.wait_visible("#related-terms .chip")
    assert related[0].text.startswith("+ ")
    return _page_ids(browser)


def _next_page(server: str, browser: Browser) -> None:
    browser.visible("#pager button")[-1].click()
    browser.wait(lambda d: browser.state().get("page") == ["2"], "page 2 in the URL")
    answer = httpx.get(f"{server}/search", params={"q": QUERY, "k": 10, "offset": 10}).json()
    browser.wait(lambda d: _page_ids(browser) == [h["id"] for h in answer["results"]], "the hits of page 2")


def _cites_both_ways(server: str, doc_id: str) -> bool:
    path = quote(doc_id)
    cites = httpx.get(f"{server}/documents/{path}/citations").json()
    cited_by = httpx.get(f"{server}/documents/{path}/cited-by", params={"limit": 1}).json()
    return bool(cites.get("citations") and cited_by.get("cited_by"))


def _check_citations(server: str, browser: Browser, doc_id: str) -> None:
    """The document view lists what the API says the document cites and is cited by."""
    path = quote(doc_id)
    cites = httpx.get(f"{server}/documents/{path}/citations").json()
    cited_by = httpx.get(f"{server}/documents/{path}/cited-by", params={"limit": 10}).json()
    assert cites["citations"] and cited_by["cited_by"], f"pick a demo document with citations both ways: {doc_id}"
    shown = browser.wait_visible("#doc-view .citations li a")
    assert [a.get_attribute("data-doc") for a in shown] == [c["id"] for c in cites["citations"]]
    shown = browser.wait_visible("#doc-view .cited-by li a")
    assert [a.get_attribute("data-doc") for a in shown] == [c["id"] for c in cited_by["cited_by"]]
    assert browser.visible("#doc-view .cited-by h3")[0].text == f"ZITIERT VON ({cited_by['total']})"


def _narrow_by_facet(server: str, browser: Browser) -> str:
    """Click the first law facet: the page shows the hits the API gives for that law. Returns the page's URL."""
    facet_inputs = browser.wait_visible("#facets input[data-facet='law']")
    counts = [c.text for c in browser.visible("#facets [data-field='law'] .count")]
    answer = httpx.get(f"{server}/search", params={"q": QUERY, "facets": "law"}).json()
    assert counts == [str(f["count"]) for f in answer["facets"]["law"]][: len(counts)]
    law = facet_inputs[0].get_attribute("value")
    facet_inputs[0].click()
    browser.wait(lambda d: browser.state().get("law") == [law], "the law facet in the URL")
    browser.wait(lambda d: all(i.is_selected() for i in browser.visible("#facets input[data-facet='law']")),
                 "the chosen facet checked")
    answer = httpx.get(f"{server}/search", params={"q": QUERY, "law": law, "k": 10}).json()
    browser.wait(lambda d: _page_ids(browser) == [h["id"] for h in answer["results"]], "the hits narrowed to the law")
    return str(browser.driver.current_url)


def _suggested(browser: Browser) -> list[str]:
    return [li.find_element("css selector", ".sugg-text").text for li in browser.visible("#suggestions li")]


def test_suggestions_open_a_section_narrow_to_a_law_and_complete_the_last_word(browser: Browser, server: str) -> None:
    from selenium.webdriver.common.keys import Keys

    driver = browser.driver
    driver.get(server + "/")
    box = browser.wait_visible("#q")[0]
    box.send_keys("DMietG § 1")
    browser.wait(lambda d: (_suggested(browser) or [""])[0] == "DMietG § 1 Mietvertrag", "the section suggested")
    box.send_keys(Keys.ARROW_DOWN, Keys.ENTER)
    browser.wait(lambda d: browser.state().get("doc") == ["DMietG § 1"], "the section opened")
    assert browser.wait_visible("#doc-view h1")[0].text == "Mietvertrag"

    box = browser.visible("#q")[0]
    box.clear()
    box.send_keys("Demo-Miet")
    browser.wait(lambda d: "Demo-Mietrechtsgesetz (DMietG)" in _suggested(browser), "the law suggested")
    next(li for li in browser.visible("#suggestions li") if "(DMietG)" in li.text).click()
    browser.wait(lambda d: browser.state() == {"q": ["DMietG"], "law": ["DMietG"]}, "the search narrowed to the law")
    browser.wait_visible("#results .hit")
    assert all("DMietG" in m.text for m in browser.visible("#results .hit .meta"))

    box = browser.visible("#q")[0]
    box.clear()
    box.send_keys("Kündigung wegen Eigenb")
    browser.wait(lambda d: "eigenbedarf" in _suggested(browser), "the last word completed")
    next(li for li in browser.visible("#suggestions li") if li.text.startswith("eigenbedarf\n")).click()
    browser.wait(lambda d: browser.state().get("q") == ["Kündigung wegen eigenbedarf"], "the completed query")
    browser.wait_visible("#results .hit")
    _only_local(browser, server)


def test_shared_link_opens_document_and_snippets_stay_text(browser: Browser, server: str, demo_model) -> None:  # type: ignore[no-untyped-def]
    doc_id = next(i for i in demo_model.index.ids if "§" in i)
    driver = browser.driver
    driver.get(f"{server}/?doc={doc_id.replace(' ', '%20')}")
    heading = browser.wait_visible("#doc-view h1")[0]
    assert heading.text == demo_model.document(doc_id).title
    assert browser.visible("#doc-view .back")[0].text == "← Zur Suche"
    # the renderer turns only <mark> pairs into elements; everything else in a snippet is text
    html, images, marks = driver.execute_script(
        "const p = document.createElement('p'); renderMarked(p, arguments[0]);"
        "return [p.innerHTML, p.querySelectorAll('img').length, p.querySelectorAll('mark').length];",
        "&lt;b&gt;Miete&lt;/b&gt; <mark>K&amp;ündigung</mark> <img src=x onerror=alert(1)> &quot;x&#x27;",
    )
    assert images == 0 and marks == 1
    assert html == '&lt;b&gt;Miete&lt;/b&gt; <mark>K&amp;ündigung</mark> &lt;img src=x onerror=alert(1)&gt; "x\''

    # a citation that names no document of the corpus is shown as written, with the reason
    with httpx.Client(base_url=server) as http:
        unresolved = next(
            (i, answer["unresolved"]) for i in demo_model.index.ids
            if (answer := http.get(f"/documents/{quote(i)}/citations").json())["unresolved"]
        )
    driver.get(f"{server}/?doc={quote(unresolved[0])}")
    shown = browser.wait_visible("#doc-view .citations li.unresolved")
    assert [li.text.split("\n")[0] for li in shown] == [f"„{c['surface']}“" for c in unresolved[1]]
    assert all("nicht aufgelöst: " in li.text for li in shown)
    _only_local(browser, server)


def test_page_sends_the_api_key_typed_into_it(demo_models_dir: Path, browser: Browser) -> None:
    with uvicorn_server(demo_models_dir, LEGALSEARCH_API_KEYS='["page-key"]') as base:
        driver = browser.driver
        driver.get(f"{base}/?q=Miete")
        notice = browser.wait_visible("#notice")[0]
        assert "API-Schlüssel" in notice.text
        assert browser.visible("#api-key"), "the key field opens by itself"
        browser.visible("#api-key")[0].send_keys("page-key")
        browser.visible("#key-form button")[0].click()
        browser.wait_visible("#results .hit")
        assert not browser.visible("#notice")
        _only_local(browser, base)


def test_docs_render_offline(browser: Browser, server: str) -> None:
    driver = browser.driver
    driver.get(server + "/docs")
    operations = browser.wait_visible(".swagger-ui .opblock-summary-path")
    assert "/search" in [o.text.replace("\u200b", "") for o in operations]
    assert httpx.get(server + "/redoc").status_code == 404, "ReDoc would load its logo from a CDN"
    _only_local(browser, server)


def _screenshot(browser: Browser, name: str = "search-page.png") -> None:
    """With LEGALSEARCH_SCREENSHOT_DIR set, the visible part of the page as ``name`` there."""
    folder = os.environ.get("LEGALSEARCH_SCREENSHOT_DIR")
    if folder:
        browser.driver.execute_script("window.scrollTo(0, 0)")
        browser.driver.save_screenshot(str(Path(folder) / name))
