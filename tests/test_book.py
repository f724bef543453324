"""The course as a static site (``make book``), checked page by page in headless Chromium.

``book/build.py`` turns the stored notebooks into a site in ``build/book/`` without executing
them. This test serves a copy of that site on 127.0.0.1 (a thread of the test process: it stops
with the test, and by itself after ``SERVER_LIFETIME_S`` at the latest), loads every HTML page
in headless Chromium (Debian's ``/usr/bin/chromium`` driven by Playwright from PyPI, launched as
``tests/test_browser.py`` does; no browser is ever downloaded) with every request that leaves
the server blocked and recorded, and asserts that:

(a) every page loads with no console error, no uncaught exception and no failed request;
(b) no page requests anything from another host (no CDN, no web font, no widget manager);
(c) every image loads and decodes, and every internal link resolves, anchors included;
(d) the contents (the sidebar, and the chain of "next" links from the landing page) list the
    notebooks in numbering order;
(e) each page whose notebook shows a widget shows it (drawn from the stored widget state, or as
    its screenshot), and no widget shows as text;
(f) each notebook page opens with its learning goals and how to run it, and shows every
    exercise cell of the notebook, as an exercise (a placeholder, in its box).

The expectations come from the notebooks as they were when the site was built (build.py keeps
that copy in ``build/book-src/_stored/``), never from what a notebook says.

Two screenshots go to ``effnb.plots.FIGURES_DIR`` (``figures/`` unless ``EFFNB_FIGURES``
redirects it; ``make test`` does): ``book-landing.png`` and ``book-notebook.png`` (the first
notebook page with both figures and a widget: its top, and its widget in place).

Environment variables:

* ``EFFNB_BOOK_DIR=build/book`` tests that site (``make test`` sets it, right after
  ``make book``) instead of building one into a scratch folder; a copy is served, so another
  ``make book`` can replace the folder meanwhile;
* ``EFFNB_BOOK_PORT`` (default 8897), ``EFFNB_CHROMIUM`` (default ``/usr/bin/chromium``);
* ``CI=true`` turns "Chromium, Playwright or the book's packages are missing" into a failure.
"""

from __future__ import annotations

import functools
import html
import importlib.util
import io
import json
import os
import re
import shutil
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from test_browser import CHROMIUM, CHROMIUM_ARGS, UNRENDERED_RE, port_is_free, skip_or_fail

REPO = Path(__file__).resolve().parents[1]
PORT = int(os.environ.get("EFFNB_BOOK_PORT", "8897"))
SERVER_LIFETIME_S = 900.0  # the server shuts itself down after this, whatever happens
CRAWL_BUDGET_S = 600.0
PAGE_TIMEOUT_S = 60.0
IMAGE_TIMEOUT_S = 20.0
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
NOTEBOOK_PAGE_RE = re.compile(r"^notebooks/(\d\d_[A-Za-z0-9_]+)\.html$")

browser = pytest.mark.browser


def load_build_module() -> Any:
    """book/build.py as a module (book/ is not a package)."""
    name = "effnb_book_build"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / "book" / "build.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look the module up while it executes
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------------------------
# Without a browser: the launch links and the staging of one notebook


def test_launch_links_are_built_from_the_one_repository_url() -> None:
    build = load_build_module()
    nb = "notebooks/01_depthwise_separable.ipynb"
    assert build.launch_links("", nb) == {}
    assert build.launch_links("  ") == {}
    gh = build.launch_links("https://github.com/acme/effnb", nb)
    assert gh["binder"] == (
        "https://mybinder.org/v2/gh/acme/effnb/main?labpath=notebooks%2F01_depthwise_separable.ipynb"
    )
    assert gh["colab"] == (
        "https://colab.research.google.com/github/acme/effnb/blob/main/"
        "notebooks/01_depthwise_separable.ipynb"
    )
    assert gh["pip"] == "effnb @ git+https://github.com/acme/effnb@main"
    branch = build.launch_links("https://github.com/acme/effnb.git/tree/course-v2/", nb)
    assert "/acme/effnb/course-v2?" in branch["binder"]
    assert "/blob/course-v2/" in branch["colab"]
    whole = build.launch_links("https://github.com/acme/effnb")
    assert whole["binder"].endswith("?urlpath=lab%2Ftree%2Fnotebooks") and "colab" not in whole
    gl = build.launch_links("https://gitlab.com/acme/effnb", nb)
    assert gl["binder"].startswith("https://mybinder.org/v2/gl/acme%2Feffnb/main?")
    assert "colab" not in gl  # Colab opens notebooks from GitHub only
    with pytest.raises(ValueError):
        build.launch_links("github.com/acme", nb)
    config = build.load_config()
    assert isinstance(config.get("repository_url"), str), "book/book.toml: repository_url"


def tiny_notebook() -> dict[str, Any]:
    """A stored notebook in miniature: title and goals, a widget with state, an exercise."""
    slider = {
        "model_name": "IntSliderModel",
        "state": {"description": "width", "value": 24, "min": 8, "max": 64, "step": 8},
    }
    output = {
        "model_name": "OutputModel",
        "state": {
            "outputs": [
                {"output_type": "stream", "name": "stdout", "text": "MACs <b>= 42\n"},
                {"output_type": "display_data", "data": {"image/png": "iVBORw0KGgo=\n"}},
            ]
        },
    }
    box = {"model_name": "VBoxModel", "state": {"children": ["IPY_MODEL_s", "IPY_MODEL_o"]}}
    view = {WIDGET_VIEW: {"model_id": "b", "version_major": 2, "version_minor": 0}}
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "widgets": {
                "application/vnd.jupyter.widget-state+json": {
                    "state": {"s": slider, "o": output, "b": box},
                    "version_major": 2,
                    "version_minor": 0,
                }
            }
        },
        "cells": [
            {
                "cell_type": "markdown",
                "id": "a",
                "metadata": {},
                "source": "# 09 · A topic\n\nIn this notebook we\n\n1. build it;\n2. time it.\n\n"
                "## Part one\n\nText.",
            },
            {
                "cell_type": "code",
                "id": "w",
                "metadata": {},
                "execution_count": 1,
                "source": "explorer(f, width=int_slider(24, 8, 64, 8))",
                "outputs": [
                    {
                        "output_type": "execute_result",
                        "execution_count": 1,
                        "metadata": {},
                        "data": {**view, "text/plain": "VBox(children=(IntSlider(value=24"},
                    }
                ],
            },
            {
                "cell_type": "code",
                "id": "e",
                "metadata": {"tags": ["exercise"]},
                "execution_count": None,
                "source": "answer = ...",
                "outputs": [],
            },
        ],
    }


def test_stage_notebook_opens_with_goals_and_launch_links_and_draws_widgets() -> None:
    build = load_build_module()
    stored = tiny_notebook()
    before = json.dumps(stored)
    for url, expect_binder in [("", False), ("https://github.com/acme/effnb", True)]:
        staged, info = build.stage_notebook(
            stored, "09_topic", {"repository_url": url}, REPO / "figures", {}
        )
        assert json.dumps(stored) == before, "stage_notebook must not change its input"
        assert "widgets" not in staged["metadata"], "myst-nb would load widget scripts from a CDN"
        top = staged["cells"][0]["source"]
        assert top.startswith("# 09 · A topic\n")
        goals = top.index("{admonition} Learning goals")
        assert top.index("1. build it;") > goals
        assert top.index("{admonition} Run this notebook") > top.index("2. time it.")
        assert top.index("## Part one") > top.index("Run this notebook"), "no heading inside"
        assert "`make course`" in top and "_stored/09_topic.ipynb" in top
        assert ("mybinder.org" in top) is expect_binder
        assert ("colab.research.google.com" in top) is expect_binder
        outputs = [o for c in staged["cells"] for o in c.get("outputs", [])]
        assert len(outputs) == 1 and set(outputs[0]["data"]) == {"text/html"}
        drawn = outputs[0]["data"]["text/html"]
        assert 'data-effnb-widget="drawn"' in drawn
        assert '<input type="range" disabled min="8" max="64" step="8" value="24"' in drawn
        assert "MACs &lt;b&gt;= 42" in drawn and 'src="data:image/png;base64,iVBORw0KGgo="' in drawn
        assert "<script" not in drawn
        assert (info.widget_views, info.widgets_drawn, info.exercises) == (1, 1, 1)
    stored["metadata"] = {}  # saved without widget state: a note, never the widget's repr
    staged, info = build.stage_notebook(stored, "09_topic", {}, REPO / "figures", {})
    shown = json.dumps([c.get("outputs") for c in staged["cells"]])
    assert 'data-effnb-widget=\\"missing\\"' in shown and "VBox(children" not in shown
    assert (info.widget_views, info.widgets_drawn) == (1, 0)


def test_links_to_files_the_book_lacks_go_to_the_repository_or_become_text() -> None:
    build = load_build_module()
    in_book = {"notebooks/01_a.ipynb", "docs/reference.md", "figures/01-x.png"}
    text = (
        "See [the code](../effnb/costs.py#L3), [A](../docs/reference.md#a1-x), [next](01_a.ipynb)"
        ", [web](https://example.org), [here](#part) and `[not](../README.md)`.\n"
        "```python\nx = y[i](../README.md)\n```\n[ref]: ../README.md"
    )
    plain = build.rewrite_links(text, "notebooks/00_b.ipynb", in_book, "")
    assert plain.startswith("See the code, [A](../docs/reference.md#a1-x), [next](01_a.ipynb)")
    assert "[web](https://example.org), [here](#part) and `[not](../README.md)`" in plain
    assert "x = y[i](../README.md)" in plain and plain.endswith("[ref]: #")
    linked = build.rewrite_links(text, "notebooks/00_b.ipynb", in_book, "https://github.com/a/b")
    assert "[the code](https://github.com/a/b/blob/main/effnb/costs.py#L3)" in linked
    assert linked.endswith("[ref]: https://github.com/a/b/blob/main/README.md")


def test_runtime_comes_from_the_stored_timestamps() -> None:
    build = load_build_module()
    nb = tiny_notebook()
    assert build.stored_runtime_s(nb) is None
    for i, cell in enumerate(c for c in nb["cells"] if c["cell_type"] == "code"):
        cell["metadata"]["execution"] = {
            "iopub.execute_input": f"2026-11-30T10:0{i}:00.000000Z",
            "shell.execute_reply": f"2026-11-30T10:0{i}:30.500000Z",
        }
    assert build.stored_runtime_s(nb) == pytest.approx(61.0)
    assert build.budget_minutes({"runtime_budget_minutes": {"default": 3, "06": 6}}, "06_nas") == 6


# ---------------------------------------------------------------------------------------------
# The built site, in Chromium


@dataclass
class Book:
    site: Path
    src: Path
    manifest: dict[str, Any]
    build_seconds: float | None


@dataclass
class StoredNotebook:
    stem: str
    number: int
    widget_views: int
    exercises: int


@dataclass
class PageReport:
    path: str
    title: str = ""
    problems: list[str] = field(default_factory=list)  # console errors, failed requests
    images: list[dict[str, Any]] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    nav: list[str] = field(default_factory=list)
    next: str | None = None
    widgets: list[dict[str, Any]] = field(default_factory=list)
    shots: list[dict[str, Any]] = field(default_factory=list)
    exercises: int = 0
    goals: bool = False
    launch: str | None = None
    output_text: str = ""
    output_images: int = 0


@pytest.fixture(scope="module")
def browser_tools() -> None:
    """Chromium and Playwright must be there (a skip, or a failure under CI=true)."""
    if not os.access(CHROMIUM, os.X_OK):
        skip_or_fail(
            f"{CHROMIUM} not found: install Debian's chromium "
            "(`make browser-deps`, or apt-get install -y --no-install-recommends chromium)"
        )
    try:
        import playwright  # noqa: F401
    except ImportError:
        skip_or_fail("Python package 'playwright' is missing: pip install -e '.[test]'")


@pytest.fixture(scope="module")
def book(browser_tools: None, tmp_path_factory: pytest.TempPathFactory) -> Book:
    """The built site: a copy of EFFNB_BOOK_DIR, or a fresh build into a scratch folder."""
    tmp = tmp_path_factory.mktemp("book")
    given = os.environ.get("EFFNB_BOOK_DIR")
    if given:
        site = Path(given).resolve()
        src = site.with_name(site.name + "-src")
        with load_build_module().site_lock(site):  # not while another make book swaps it
            if not (site / "index.html").is_file() or not (src / "manifest.json").is_file():
                pytest.fail(f"EFFNB_BOOK_DIR={given} holds no built book: run `make book` first")
            shutil.copytree(site, tmp / "book")
            shutil.copytree(src, tmp / "book-src")
        manifest = json.loads((tmp / "book-src" / "manifest.json").read_text())
        return Book(tmp / "book", tmp / "book-src", manifest, None)
    for module in ("sphinx", "myst_nb", "sphinx_book_theme"):
        if importlib.util.find_spec(module) is None:
            skip_or_fail(f"Python package {module!r} is missing: pip install -e '.[book]'")
    t0 = time.monotonic()
    manifest = load_build_module().build(tmp / "book", quiet=True)
    return Book(tmp / "book", tmp / "book-src", manifest, time.monotonic() - t0)


@pytest.fixture(scope="module")
def stored(book: Book) -> list[StoredNotebook]:
    """What the notebooks held when the site was built, in numbering order."""
    found = []
    for path in sorted((book.src / "_stored").glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        views = sum(
            WIDGET_VIEW in (out.get("data") or {})
            for cell in nb["cells"]
            for out in cell.get("outputs") or []
        )
        exercises = sum(
            cell.get("cell_type") == "code"
            and "exercise" in ((cell.get("metadata") or {}).get("tags") or [])
            for cell in nb["cells"]
        )
        found.append(StoredNotebook(path.stem, int(path.stem[:2]), views, exercises))
    assert found, f"no stored notebooks in {book.src / '_stored'}"
    return sorted(found, key=lambda n: (n.number, n.stem))


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="module")
def site_url(book: Book) -> Any:
    """The site on 127.0.0.1:PORT, served by a thread that stops with the test (or by itself)."""
    if not port_is_free(PORT):
        pytest.fail(f"port {PORT} on 127.0.0.1 is in use: set EFFNB_BOOK_PORT to a free port")
    handler = functools.partial(QuietHandler, directory=str(book.site))
    server = ThreadingHTTPServer(("127.0.0.1", PORT), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2})
    thread.daemon = True
    thread.start()
    stopper = threading.Timer(SERVER_LIFETIME_S, server.shutdown)
    stopper.daemon = True
    stopper.start()
    try:
        yield f"http://127.0.0.1:{PORT}"
    finally:
        stopper.cancel()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser_context(site_url: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Headless Debian Chromium, fresh profile; every request off the site blocked, recorded."""
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    blocked: list[str] = []
    requested: list[str] = []

    def only_the_site(route: Any) -> None:
        url = route.request.url
        requested.append(url)
        if url == site_url or url.startswith(site_url + "/"):
            route.continue_()
        else:
            blocked.append(url)
            route.abort()

    with sync_playwright() as pw:
        try:
            context = pw.chromium.launch_persistent_context(
                str(profile),
                executable_path=CHROMIUM,
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": 1280, "height": 900},
                timeout=60_000,
            )
        except Exception as exc:  # the launch error says which flag or library is wrong
            pytest.fail(f"could not launch {CHROMIUM} through Playwright: {exc}")
        context.route("**/*", only_the_site)
        context.blocked_requests = blocked  # type: ignore[attr-defined]
        context.requested = requested  # type: ignore[attr-defined]
        try:
            yield context
        finally:
            context.close()


# Everything a check needs from one loaded page.
JS_REPORT = """
async (imageTimeoutMs) => {
  const visible = (el) => {
    const r = el.getBoundingClientRect();
    const st = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && st.visibility !== 'hidden' && st.display !== 'none';
  };
  const images = await Promise.all(Array.from(document.images).map(async (img) => {
    img.loading = 'eager';
    const src = (img.currentSrc || img.src || '');
    const timeout = new Promise((_, reject) =>
      setTimeout(() => reject(new Error('timed out')), imageTimeoutMs));
    try {
      await Promise.race([img.decode(), timeout]);
    } catch (e) {
      return {src: src.slice(0, 160), ok: false, error: String(e)};
    }
    return {src: src.slice(0, 160), ok: img.naturalWidth > 0, width: img.naturalWidth};
  }));
  const next = document.querySelector('a.right-next');
  const launch = document.querySelector('.admonition.effnb-launch');
  const outputs = Array.from(document.querySelectorAll('.cell_output'));
  return {
    title: document.title,
    images,
    links: Array.from(document.querySelectorAll('a[href]')).map((a) => a.href),
    nav: Array.from(document.querySelectorAll('nav.bd-docs-nav a.reference.internal'))
      .map((a) => a.href),
    next: next ? next.href : null,
    widgets: Array.from(document.querySelectorAll('.effnb-widget')).map((w) => ({
      kind: w.dataset.effnbWidget,
      visible: visible(w),
      controls: w.querySelectorAll('input, select, output, button, textarea, progress').length,
      images: Array.from(w.querySelectorAll('img')).filter((i) => i.naturalWidth > 0).length,
    })),
    shots: Array.from(document.querySelectorAll('figure.effnb-widget-shot img'))
      .map((i) => ({visible: visible(i), width: i.naturalWidth})),
    exercises: Array.from(document.querySelectorAll('div.cell.tag_exercise')).filter(visible).length,
    goals: !!document.querySelector('.admonition.effnb-goals'),
    launch: launch ? launch.innerText : null,
    output_text: outputs.map((o) => o.innerText).join('\\n'),
    output_images: outputs.reduce((n, o) => n + o.querySelectorAll('img').length, 0),
  };
}
"""

JS_TYPESET = """
async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  if (document.fonts) await document.fonts.ready;
}
"""


def site_pages(site: Path) -> list[str]:
    """Every HTML page of the site, as paths relative to its root (not theme files)."""
    pages = [p.relative_to(site).as_posix() for p in site.rglob("*.html")]
    return sorted(p for p in pages if not p.startswith("_"))


def load_page(context: Any, url: str, path: str) -> PageReport:
    """Open one page, wait for math and fonts, and report on it."""
    report = PageReport(path=path)
    page = context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_S * 1000)
    page.on("pageerror", lambda exc: report.problems.append(f"uncaught exception: {exc}"))
    page.on(
        "console",
        lambda msg: (
            report.problems.append(f"console.{msg.type}: {msg.text}")
            if msg.type == "error"
            else None
        ),
    )
    page.on(
        "requestfailed",
        lambda req: report.problems.append(f"request failed: {req.url} ({req.failure})"),
    )
    page.on(
        "response",
        lambda resp: (
            report.problems.append(f"HTTP {resp.status}: {resp.url}")
            if resp.status >= 400
            else None
        ),
    )
    try:
        page.goto(url, wait_until="load", timeout=PAGE_TIMEOUT_S * 1000)
        page.evaluate(JS_TYPESET)
        page.wait_for_load_state("networkidle", timeout=PAGE_TIMEOUT_S * 1000)
        data = page.evaluate(JS_REPORT, int(IMAGE_TIMEOUT_S * 1000))
    except Exception as exc:  # a page that cannot be loaded is a finding, not a crash
        report.problems.append(f"could not load: {exc}")
        return report
    finally:
        page.close()
    for key, value in data.items():
        setattr(report, key, value)
    return report


@pytest.fixture(scope="module")
def crawl(book: Book, site_url: str, browser_context: Any) -> dict[str, PageReport]:
    """Every page of the site loaded once, in path order."""
    deadline = time.monotonic() + CRAWL_BUDGET_S
    reports: dict[str, PageReport] = {}
    t0 = time.monotonic()
    for path in site_pages(book.site):
        if time.monotonic() > deadline:
            pytest.fail(f"loading the site took over {CRAWL_BUDGET_S:.0f} s; stopped at {path}")
        reports[path] = load_page(browser_context, f"{site_url}/{path}", path)
    print(
        f"book: {len(reports)} pages loaded in {time.monotonic() - t0:.1f} s"
        + (f", built in {book.build_seconds:.1f} s" if book.build_seconds else "")
    )
    return reports


def relative(url: str, site_url: str) -> str | None:
    """The site path of a URL on the test server (no query, no fragment), else None."""
    if not url.startswith(site_url + "/"):
        return None
    path = urllib.parse.unquote(urllib.parse.urlsplit(url).path).lstrip("/")
    return path + "index.html" if path == "" or path.endswith("/") else path


@browser
def test_every_page_loads_without_errors_and_nothing_leaves_the_site(
    crawl: dict[str, PageReport], browser_context: Any, site_url: str
) -> None:
    problems = [f"{path}: {p}" for path, r in crawl.items() for p in r.problems]
    assert not problems, "pages with errors:\n" + "\n".join(problems[:40])
    blocked = browser_context.blocked_requests
    assert not blocked, f"the site requested other hosts: {sorted(set(blocked))[:10]}"
    local = [u for u in browser_context.requested if u.startswith(site_url)]
    assert local and len(local) == len(browser_context.requested)
    unrendered = [p for p, r in crawl.items() if UNRENDERED_RE.search(r.output_text)]
    assert not unrendered, f"a widget shows as text, not drawn, on {unrendered}"
    print(f"book: {len(crawl)} pages, {len(set(local))} distinct local requests, none elsewhere")


@browser
def test_every_image_loads_and_every_internal_link_resolves(
    crawl: dict[str, PageReport], site_url: str
) -> None:
    broken = [
        f"{path}: image {img['src']!r} did not load ({img.get('error', 'no pixels')})"
        for path, r in crawl.items()
        for img in r.images
        if not img.get("ok")
    ]
    targets: dict[str, dict[str, set[str]]] = {}  # page -> fragment -> pages linking to it
    external = 0
    for path, r in crawl.items():
        for url in r.links:
            target = relative(url, site_url)
            if target is None:
                external += url.startswith(("http:", "https:"))
                continue
            fragment = urllib.parse.unquote(urllib.parse.urlsplit(url).fragment)
            targets.setdefault(target, {}).setdefault(fragment, set()).add(path)
    for target, fragments in sorted(targets.items()):
        try:
            with urllib.request.urlopen(f"{site_url}/{target}", timeout=10) as resp:
                body = resp.read()
        except (urllib.error.URLError, OSError) as exc:
            broken.append(f"{sorted(set().union(*fragments.values()))[0]}: link to {target}: {exc}")
            continue
        if not target.endswith(".html"):
            continue
        ids = {html.unescape(m.decode()) for m in re.findall(rb'\b(?:id|name)="([^"]+)"', body)}
        for fragment, sources in sorted(fragments.items()):
            if fragment and fragment not in ids:
                broken.append(f"{sorted(sources)[0]}: link to {target}#{fragment}: no such anchor")
    assert not broken, "broken images or links:\n" + "\n".join(broken[:40])
    n_images = sum(len(r.images) for r in crawl.values())
    n_links = sum(len(r.links) for r in crawl.values())
    anchors = sum(1 for fragments in targets.values() for f in fragments if f)
    print(
        f"book: {n_images} images loaded; {n_links} links: {len(targets)} distinct local files "
        f"resolved, {anchors} distinct anchors found; {external} to other sites, not followed"
    )


@browser
def test_contents_follow_the_notebook_numbering(
    crawl: dict[str, PageReport], stored: list[StoredNotebook], site_url: str
) -> None:
    expected = [n.stem for n in stored]
    assert [n.number for n in stored] == sorted({n.number for n in stored}), "numbers repeat"
    landing = crawl["index.html"]

    def notebooks_in(urls: list[str]) -> list[str]:
        found = []
        for url in urls:
            m = NOTEBOOK_PAGE_RE.match(relative(url, site_url) or "")
            if m and m.group(1) not in found:
                found.append(m.group(1))
        return found

    assert notebooks_in(landing.nav) == expected, "the sidebar's order"
    for path, r in crawl.items():
        if NOTEBOOK_PAGE_RE.match(path):
            assert notebooks_in(r.nav) == expected, f"the sidebar on {path}"
    chain, at, seen = [], "index.html", set()
    while at in crawl and at not in seen and crawl[at].next:
        seen.add(at)
        at = relative(crawl[at].next, site_url) or ""
        if m := NOTEBOOK_PAGE_RE.match(at):
            chain.append(m.group(1))
    assert chain == expected, "the 'next' links from the landing page"


@browser
def test_notebook_pages_show_goals_launch_links_exercises_and_widgets(
    crawl: dict[str, PageReport], stored: list[StoredNotebook], book: Book
) -> None:
    with_url = bool(book.manifest.get("repository_url"))
    problems = []
    for nb in stored:
        path = f"notebooks/{nb.stem}.html"
        r = crawl.get(path)
        if r is None:
            problems.append(f"{path}: no such page")
            continue
        if not r.goals:
            problems.append(f"{path}: no learning goals at the top")
        if not r.launch or "make course" not in r.launch:
            problems.append(f"{path}: no 'Run this notebook' box with `make course`")
        elif ("Binder" in r.launch) is not with_url:
            problems.append(f"{path}: Binder link {'missing' if with_url else 'without a URL'}")
        if r.exercises != nb.exercises:
            problems.append(
                f"{path}: {r.exercises} exercise cells shown as exercises, the notebook has "
                f"{nb.exercises}"
            )
        if len(r.widgets) != nb.widget_views:
            problems.append(
                f"{path}: {len(r.widgets)} widgets drawn for {nb.widget_views} in the notebook"
            )
        shot = any(s["visible"] and s["width"] > 0 for s in r.shots)
        for i, w in enumerate(r.widgets, 1):
            shown = w["visible"] and (w["controls"] or w["images"])
            if w["kind"] == "drawn" and not shown:
                problems.append(f"{path}: widget {i} is drawn empty or hidden: {w}")
            if w["kind"] != "drawn" and not shot:
                problems.append(
                    f"{path}: widget {i} has no stored state and no screenshot "
                    f"(figures/widgets-{nb.stem}.png); store the notebook with widget state"
                )
    assert not problems, "\n".join(problems)
    print(
        f"book: {sum(n.widget_views for n in stored)} widgets on "
        f"{sum(1 for n in stored if n.widget_views)} pages, "
        f"{sum(n.exercises for n in stored)} exercises on {len(stored)} notebook pages"
    )


def side_by_side(left: bytes, right: bytes, scale: float = 0.75) -> Any:
    """Two screenshots next to each other with a thin rule between, scaled down."""
    from PIL import Image

    a = Image.open(io.BytesIO(left)).convert("RGB")
    b = Image.open(io.BytesIO(right)).convert("RGB")
    gap = 24
    canvas = Image.new("RGB", (a.width + b.width + gap, max(a.height, b.height)), "#d0d0d0")
    canvas.paste(a, (0, 0))
    canvas.paste(b, (a.width + gap, 0))
    size = (int(canvas.width * scale), int(canvas.height * scale))
    return canvas.resize(size, Image.LANCZOS)


@browser
def test_screenshots_of_the_landing_page_and_a_notebook_page(
    crawl: dict[str, PageReport], stored: list[StoredNotebook], site_url: str, browser_context: Any
) -> None:
    """figures/book-landing.png, figures/book-notebook.png (or EFFNB_FIGURES)."""
    from PIL import Image

    from effnb.plots import FIGURES_DIR

    out = Path(FIGURES_DIR)
    out.mkdir(parents=True, exist_ok=True)
    chosen = next(
        (
            n.stem
            for n in stored
            if any(w["visible"] for w in crawl[f"notebooks/{n.stem}.html"].widgets)
            and crawl[f"notebooks/{n.stem}.html"].output_images
        ),
        None,
    )
    page = browser_context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_S * 1000)
    try:
        page.goto(f"{site_url}/index.html", wait_until="load")
        page.evaluate(JS_TYPESET)
        Image.open(io.BytesIO(page.screenshot())).save(out / "book-landing.png", optimize=True)
        if chosen is None:
            pytest.skip("no notebook page has both figures and a widget to photograph")
        page.goto(f"{site_url}/notebooks/{chosen}.html", wait_until="load")
        page.evaluate(JS_TYPESET)
        page.wait_for_load_state("networkidle")
        top = page.screenshot()
        widget = page.locator(".effnb-widget").first
        widget.scroll_into_view_if_needed()
        page.evaluate(
            "() => { const r = document.querySelector('.effnb-widget').getBoundingClientRect();"
            " window.scrollBy(0, r.top - 120); }"
        )
        page.wait_for_timeout(300)
        box = page.locator(".bd-article-container").first.bounding_box()
        viewport = page.viewport_size or {"width": 1280, "height": 900}
        clip = None
        if box:  # the widget in the page's text column, without the sidebars again
            clip = {"x": box["x"], "y": 0, "width": box["width"], "height": viewport["height"]}
        widget_shot = page.screenshot(clip=clip) if clip else page.screenshot()
        side_by_side(top, widget_shot).save(out / "book-notebook.png", optimize=True)
    finally:
        page.close()
    print(f"book: screenshots {out / 'book-landing.png'}, {out / 'book-notebook.png'} ({chosen})")
