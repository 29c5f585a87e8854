"""The public page in a real browser (headless Chromium, driven by Selenium): it loads under
the web door's Content-Security-Policy, shows a rule changed by a binding vote and a closed
period's figures, and passes an accessibility check.

The accessibility check is pure Python, so nothing is fetched at test time: one h1, headings
that never skip a level, `lang` on the page, a text alternative on every image, a label on
every form control, and every text colour of the stylesheet at least 4.5:1 against its
background (WCAG AA), checked both in the stylesheet's own pairs and in the colours the
browser computed for the page's text. Screenshots go to tests/web/screenshots/.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from coopbot.web.public import STATIC
from tests.conftest import Coop
from tests.web.public_coop import fill, public_site

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SCREENSHOTS = Path(__file__).parent / "screenshots"
AA = 4.5
PHONE = (390, 844)
DESKTOP = (1280, 900)
CONTROLS = {"input", "select", "textarea"}


def _chromium_missing() -> str:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not Path(path).exists():
            return f"{path} is not installed (apt-get install -y {package})"
    return ""


pytestmark = pytest.mark.skipif(bool(_chromium_missing()), reason=_chromium_missing() or "")


# --- colours ------------------------------------------------------------------------------------


def rgb(value: str) -> tuple[float, float, float, float]:
    """`#1a1a1a`, `#fff` or `rgba(26, 26, 26, 1)` as (r, g, b, alpha)."""
    value = value.strip().lower()
    if value.startswith("#"):
        digits = value[1:]
        if len(digits) == 3:
            digits = "".join(c * 2 for c in digits)
        return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16), 1.0
    numbers = [float(n) for n in re.findall(r"[0-9.]+", value)]
    return numbers[0], numbers[1], numbers[2], numbers[3] if len(numbers) > 3 else 1.0


def luminance(colour: tuple[float, float, float, float]) -> float:
    def channel(c: float) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b, _ = colour
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(text: str, background: str) -> float:
    lighter, darker = sorted((luminance(rgb(text)), luminance(rgb(background))), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def stylesheet_pairs(css: str) -> list[tuple[str, str, str]]:
    """(selector, text colour, background) for every rule that sets a colour; a rule without a
    background of its own is read against the page's (body's)."""
    rules = re.findall(r"([^{}]+)\{([^}]*)\}", re.sub(r"/\*.*?\*/", "", css, flags=re.S))
    parsed = {
        selector.strip(): {
            name.strip(): value.strip() for name, _, value in (d.partition(":") for d in body.split(";")) if value
        }
        for selector, body in rules
    }
    page = parsed["body"]["background-color"]
    return [
        (selector, props["color"], props.get("background-color", page))
        for selector, props in parsed.items()
        if "color" in props
    ]


def test_the_contrast_check_tells_readable_from_unreadable() -> None:
    assert contrast("#000", "#fff") == pytest.approx(21)
    assert contrast("#777777", "#ffffff") < AA < contrast("#595959", "#ffffff")


# --- structure ----------------------------------------------------------------------------------


class Structure(HTMLParser):
    """What an accessibility checker reads from the markup."""

    def __init__(self) -> None:
        super().__init__()
        self.lang = ""
        self.headings: list[int] = []
        self.images_without_alt: list[str] = []
        self.controls: list[dict[str, str]] = []
        self.labelled: set[str] = set()
        self.viewport = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if tag == "html":
            self.lang = found.get("lang", "")
        elif re.fullmatch(r"h[1-6]", tag):
            self.headings.append(int(tag[1]))
        elif tag == "img" and not found.get("alt", "").strip():
            self.images_without_alt.append(found.get("src", "?"))
        elif tag in CONTROLS and found.get("type") != "hidden":
            self.controls.append(found)
        elif tag == "label" and "for" in found:
            self.labelled.add(found["for"])
        elif tag == "meta" and found.get("name") == "viewport":
            self.viewport = "width=device-width" in found.get("content", "")


def accessibility_faults(page: str) -> list[str]:
    seen = Structure()
    seen.feed(page)
    faults = []
    if not seen.lang:
        faults.append("no lang on <html>")
    if seen.headings.count(1) != 1:
        faults.append(f"{seen.headings.count(1)} h1 elements")
    faults += [
        f"h{level} after h{before}" for before, level in zip(seen.headings, seen.headings[1:], strict=False)
        if level > before + 1
    ]  # fmt: skip
    faults += [f"image without alt: {src}" for src in seen.images_without_alt]
    faults += [
        f"unlabelled {control}" for control in seen.controls
        if control.get("id") not in seen.labelled and not control.get("aria-label")
    ]  # fmt: skip
    if not seen.viewport:
        faults.append("no viewport for phones")
    return faults


def test_the_structure_check_finds_what_it_is_for() -> None:
    broken = '<html><h1>a</h1><h3>b</h3><h1>c</h1><img src="x.png"><input id="q"></html>'
    assert accessibility_faults(broken) == [
        "no lang on <html>",
        "2 h1 elements",
        "h3 after h1",
        "image without alt: x.png",
        "unlabelled {'id': 'q'}",
        "no viewport for phones",
    ]


# --- the browser --------------------------------------------------------------------------------


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def computed_pairs(driver: Any) -> list[tuple[str, str, str]]:
    """(element, colour, background) as the browser painted the page's text: the background is
    the nearest ancestor's that is not transparent."""
    from selenium.webdriver.common.by import By

    pairs = []
    for tag in ("h1", "h2", "h3", "p", "li", "th", "td", "a", "caption", "code", "footer p"):
        for element in driver.find_elements(By.CSS_SELECTOR, tag)[:3]:
            colour = element.value_of_css_property("color")
            node, background = element, "rgba(0, 0, 0, 0)"
            while rgb(background)[3] == 0:
                background = node.value_of_css_property("background-color")
                if node.tag_name == "html":
                    background = background if rgb(background)[3] else "#ffffff"
                    break
                node = node.find_element(By.XPATH, "..")
            pairs.append((tag, colour, background))
    return pairs


def load(driver: Any, url: str, size: tuple[int, int], shot: str) -> str:
    """Open `url` at a window size and save a screenshot; returns the page's markup."""
    driver.set_window_size(*size)
    driver.get(url)
    SCREENSHOTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(SCREENSHOTS / shot))
    return str(driver.page_source)


async def test_a_visitor_reads_the_rules_and_the_money_in_a_browser(coop: Coop, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    filled = await fill(coop)
    async with public_site(coop) as site:
        # The browser waits for each load in a worker thread while the loop serves the page.
        page = await asyncio.to_thread(load, browser, f"{site}/en", PHONE, "public-en-phone.png")
        await asyncio.to_thread(load, browser, f"{site}/fr", DESKTOP, "public-fr-desktop.png")
        french = browser.find_element(By.TAG_NAME, "h2").text
        page = await asyncio.to_thread(load, browser, f"{site}/en", DESKTOP, "public-en-desktop.png")
        rule = browser.find_element(By.XPATH, "//tr[th[contains(., 'offer policy')]]").text
        period = browser.find_element(By.ID, "period-2026-11").text
        chart = browser.find_element(By.CSS_SELECTOR, "#period-2026-11 img")
        drawn = chart.get_property("naturalWidth")
        painted = computed_pairs(browser)
        body_colour = browser.find_element(By.TAG_NAME, "body").value_of_css_property("color")

    assert french == "Les règles en vigueur"
    assert "one at a time, in turn (rotation)" in rule and f"vote P-{filled.rotation_poll} of" in rule
    assert "3 members share a dividend of €540.00 for 35 points." in period
    assert "legal reserve €135.00 (15%), development fund €225.00 (25%), dividend €540.00 (60%)" in period
    assert drawn and int(drawn) > 0, "the share chart did not load"
    assert rgb(body_colour)[:3] == (26, 26, 26), "the stylesheet did not load under the CSP"
    assert accessibility_faults(page) == []
    css = (STATIC / "style.css").read_text(encoding="utf-8")
    assert [pair for pair in stylesheet_pairs(css) if contrast(pair[1], pair[2]) < AA] == []
    assert len(painted) > 20
    assert [pair for pair in painted if contrast(pair[1], pair[2]) < AA] == []
