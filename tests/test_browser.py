"""The course's widgets work in a real browser, as a student sees them in JupyterLab.

nbval runs the notebooks' code, but it cannot tell whether a slider renders as a slider
(rather than as the text ``interactive(children=...)``) or whether moving it changes
anything. This test starts JupyterLab on ``notebooks/`` (loopback only, no token, offline),
opens each target notebook in headless Chromium (Debian's ``/usr/bin/chromium``, driven by
Playwright from PyPI; no browser is ever downloaded), runs all cells, waits for the kernel
to go idle, and then proves, for the first slider on the page, that:

(a) the slider rendered as an ipywidgets slider, and no widget shows an error;
(b) pressing an arrow key on its handle changes the numbers printed in the widget's output;
(c) it also changes the plot image in that output;
(d) no output anywhere in the notebook shows a Python traceback.

Before/after screenshots of the widget go to ``figures/widgets-<notebook stem>.png`` (or to
$EFFNB_FIGURES, as every saved figure does; ``make test`` points it at a scratch folder).

How the harness finds things, so notebook authors can keep it working:

* the slider is the first ``.widget-slider`` on the page (ipywidgets 8 IntSlider/FloatSlider,
  rendered by noUiSlider; it is moved by pressing ArrowRight three times on its
  ``.noUi-handle``, ArrowLeft when it is within a third of its maximum, and by a click on its
  track if the keys did not move it);
* its output is every ``.widget-output`` (an ``ipywidgets.Output``, as made by
  ``interact``/``interactive``/``interactive_output``/``effnb.widgets.explorer``) inside the
  nearest enclosing element of the slider that has one, searching no further than the
  slider's cell; if there is none, the cell's output area less its controls;
* that output must print at least one number and show at least one ``<img>`` (matplotlib
  inline) or ``<canvas>``, and both must change when the slider moves.

Environment variables:

* ``EFFNB_BROWSER_NOTEBOOKS=/some/folder`` runs every ``*.ipynb`` in that folder instead of
  the course's target notebooks (screenshots then go to ``/some/folder/figures``);
* ``EFFNB_BROWSER_PORT`` (default 8899), ``EFFNB_CHROMIUM`` (default ``/usr/bin/chromium``),
  ``EFFNB_BROWSER_RUN_TIMEOUT`` (seconds for "Run All", default 600);
* ``CI=true`` turns "Chromium or Playwright is missing" from a skip into a failure.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
TARGET_NOTEBOOKS = ["01_depthwise_separable.ipynb", "05_compound_scaling.ipynb"]

IN_CI = os.environ.get("CI", "").lower() == "true"
CHROMIUM = os.environ.get("EFFNB_CHROMIUM", "/usr/bin/chromium")
PORT = int(os.environ.get("EFFNB_BROWSER_PORT", "8899"))
RUN_ALL_TIMEOUT_S = float(os.environ.get("EFFNB_BROWSER_RUN_TIMEOUT", "600"))
LAB_START_TIMEOUT_S = 90.0
PAGE_LOAD_TIMEOUT_S = 120.0
KERNEL_START_TIMEOUT_S = 120.0
WIDGET_RENDER_TIMEOUT_S = 60.0
WIDGET_CHANGE_TIMEOUT_S = 180.0
SETTLE_S = 1.5  # kernel idle and output unchanged for this long counts as "done"
KEY_PRESSES = 3

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--no-default-browser-check",
]

# JupyterLab user settings for the test only (a fresh settings folder): never autosave (the
# repo's notebooks must not get outputs written into them), keep every cell in the DOM, and
# make no news or update requests.
LAB_SETTINGS: dict[str, dict[str, Any]] = {
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}

NUMBER_RE = re.compile(r"[-+]?\d(?:[\d,_]*\d)?(?:\.\d+)?(?:[eE][-+]?\d+)?")
UNRENDERED_RE = re.compile(
    r"\b(?:interactive|IntSlider|FloatSlider|FloatLogSlider|IntRangeSlider|FloatRangeSlider|"
    r"SelectionSlider|Dropdown|VBox|HBox|Output)\((?:children|value|description|outputs|"
    r"layout|options)="
)


def notebooks_dir() -> Path:
    """The folder JupyterLab serves: the repo's notebooks/, or EFFNB_BROWSER_NOTEBOOKS."""
    override = os.environ.get("EFFNB_BROWSER_NOTEBOOKS")
    return Path(override).resolve() if override else REPO / "notebooks"


def figures_dir() -> Path:
    """Where the before/after screenshots go: where ``effnb.plots.save_figure`` saves.

    That is figures/ unless EFFNB_FIGURES redirects it (``make test`` does, so a test run never
    rewrites figures/); with EFFNB_BROWSER_NOTEBOOKS, a figures/ folder beside those notebooks.
    """
    if os.environ.get("EFFNB_BROWSER_NOTEBOOKS"):
        return notebooks_dir() / "figures"
    from effnb.plots import FIGURES_DIR

    return Path(FIGURES_DIR)


def target_notebooks() -> list[str]:
    """The notebooks to test: the course's targets, or every notebook in the override folder."""
    if os.environ.get("EFFNB_BROWSER_NOTEBOOKS"):
        found = sorted(p.name for p in notebooks_dir().glob("*.ipynb"))
        return found or ["<no .ipynb in EFFNB_BROWSER_NOTEBOOKS>"]
    return TARGET_NOTEBOOKS


def skip_or_fail(reason: str) -> None:
    """Missing browser tooling: a skip on a developer's machine, a failure in CI."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the browser test must run in CI; `make browser-deps`)")
    pytest.skip(reason)


def port_is_free(port: int) -> bool:
    """True if nothing listens on 127.0.0.1:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def http_json(url: str, method: str = "GET", timeout: float = 5.0) -> Any:
    """A small JSON request to the local Jupyter server."""
    # Jupyter checks XSRF on anything but GET: double-submit one value as cookie and header.
    headers = {} if method == "GET" else {"Cookie": "_xsrf=effnb", "X-XSRFToken": "effnb"}
    req = urllib.request.Request(url, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        body = resp.read()
    return json.loads(body) if body else None


def tail(path: Path, n: int = 40) -> str:
    """The last n lines of a log file, for failure messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "<no log>"


@pytest.fixture(scope="module")
def browser_tools() -> None:
    """Chromium, Playwright, JupyterLab and ipywidgets must all be there."""
    if not os.access(CHROMIUM, os.X_OK):
        skip_or_fail(
            f"{CHROMIUM} not found: install Debian's chromium "
            "(`make browser-deps`, or apt-get install -y --no-install-recommends chromium)"
        )
    for module, hint in [
        (
            "playwright",
            "pip install -e '.[test]' (Playwright from PyPI; never `playwright install`)",
        ),
        ("jupyterlab", "pip install -e '.[course]'"),
        ("ipywidgets", "pip install -e '.[course]'"),
    ]:
        try:
            __import__(module)
        except ImportError:
            skip_or_fail(f"Python package {module!r} is missing: {hint}")


@pytest.fixture(scope="module")
def lab_url(browser_tools: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A JupyterLab server on 127.0.0.1:PORT serving the notebooks folder; yields its URL."""
    root = notebooks_dir()
    if not root.is_dir():
        pytest.skip(f"notebooks folder {root} does not exist")
    if not port_is_free(PORT):
        pytest.fail(
            f"port {PORT} on 127.0.0.1 is already in use (another JupyterLab?). "
            "Stop it or set EFFNB_BROWSER_PORT to a free port."
        )
    tmp = tmp_path_factory.mktemp("jupyterlab")
    settings = tmp / "user-settings"
    for rel, values in LAB_SETTINGS.items():
        path = settings / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    for sub in ("workspaces", "config", "runtime", "ipython", "checkpoints"):
        (tmp / sub).mkdir()
    env = dict(os.environ)
    env.update(
        JUPYTER_CONFIG_DIR=str(tmp / "config"),  # ignore the user's jupyter config
        JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
        IPYTHONDIR=str(tmp / "ipython"),
        JUPYTER_PLATFORM_DIRS="1",
        PYDEVD_DISABLE_FILE_VALIDATION="1",
        MPLBACKEND="module://matplotlib_inline.backend_inline",
    )
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--allow-root",
        "--ip=127.0.0.1",
        f"--port={PORT}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={root}",
        "--IdentityProvider.token=",
        "--ServerApp.password=",
        "--ServerApp.allow_remote_access=False",
        "--ServerApp.terminals_enabled=False",
        "--ServerApp.shutdown_no_activity_timeout=1800",  # an orphaned server ends itself
        "--ServerApp.log_level=WARN",
        "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: run commands, read status
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={tmp / 'workspaces'}",
        # JupyterLab makes a checkpoint when it opens a notebook: keep it out of notebooks/.
        f"--FileCheckpoints.checkpoint_dir={tmp / 'checkpoints'}",
    ]
    log_path = tmp / "jupyterlab.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        cmd,
        cwd=root,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{PORT}"
    try:
        deadline = time.monotonic() + LAB_START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"JupyterLab exited with code {proc.returncode} before serving; "
                    f"log {log_path}:\n{tail(log_path)}"
                )
            try:
                http_json(f"{url}/api/status", timeout=2)
                break
            except (OSError, urllib.error.URLError, ValueError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"JupyterLab did not answer on {url} within {LAB_START_TIMEOUT_S:.0f} s; "
                    f"log {log_path}:\n{tail(log_path)}"
                )
            time.sleep(0.5)
        yield url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # jupyter_server shuts its kernels down on TERM
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def browser_context(lab_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Headless Debian Chromium with a fresh, empty profile, allowed to reach only the lab."""
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    blocked: list[str] = []

    def only_loopback(route: Any) -> None:
        request_url = route.request.url
        if request_url.startswith(lab_url + "/") or request_url == lab_url:
            route.continue_()
        else:
            blocked.append(request_url)
            route.abort()

    with sync_playwright() as pw:
        try:
            context = pw.chromium.launch_persistent_context(
                str(profile),  # passed to Chromium as --user-data-dir
                executable_path=CHROMIUM,
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": 1280, "height": 1000},
                timeout=60_000,
            )
        except Exception as exc:  # the launch error says which flag or library is wrong
            pytest.fail(f"could not launch {CHROMIUM} through Playwright: {exc}")
        context.route("**/*", only_loopback)
        context.blocked_requests = blocked  # type: ignore[attr-defined]
        try:
            yield context
        finally:
            context.close()


# ---------------------------------------------------------------------------------------
# JavaScript run in the JupyterLab page (window.jupyterapp is exposed by the server flag).

JS_PANEL = """
(path) => {
  const app = window.jupyterapp;
  if (!app || !app.shell) return null;
  for (const w of app.shell.widgets('main')) {
    if (w.context && w.context.path === path && w.content && w.content.widgets) return w;
  }
  return null;
}
"""

JS_STATE = f"""
(path) => {{
  const panel = ({JS_PANEL})(path);
  if (!panel) return {{panel: false}};
  const session = panel.sessionContext.session;
  const kernel = session ? session.kernel : null;
  const cells = panel.content.widgets;
  let running = 0;
  for (const c of cells) {{
    if (c.model.type === 'code' && c.promptNode && c.promptNode.textContent.includes('*')) running++;
  }}
  const dialog = document.querySelector('.jp-Dialog');
  return {{
    panel: true,
    ready: panel.context.isReady && panel.sessionContext.isReady,
    kernel: kernel ? kernel.status : null,
    connection: kernel ? kernel.connectionStatus : null,
    running,
    cells: cells.length,
    dialog: dialog ? dialog.innerText.slice(0, 300) : null,
  }};
}}
"""

JS_RUN_ALL = f"""
(path) => {{
  const app = window.jupyterapp;
  const panel = ({JS_PANEL})(path);
  app.shell.activateById(panel.id);
  window.__effnbRun = {{done: false}};
  app.commands.execute('notebook:clear-all-cell-outputs')
    .then(() => app.commands.execute('notebook:run-all-cells'))
    .then(
      (ok) => {{ window.__effnbRun = {{done: true, ok: ok !== false}}; }},
      (err) => {{ window.__effnbRun = {{done: true, ok: false, error: String(err)}}; }},
    );
  return true;
}}
"""

# Problems visible anywhere in the notebook: unrendered widgets, widget errors, tracebacks.
JS_PROBLEMS = """
() => {
  const found = [];
  const nb = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook');
  if (!nb) return ['no notebook on the page'];
  const cells = Array.from(nb.querySelectorAll('.jp-Cell'));
  cells.forEach((cell, i) => {
    for (const out of cell.querySelectorAll('.jp-OutputArea-output')) {
      if (out.querySelector('.jp-OutputArea-output')) continue;  // report innermost only
      const text = out.innerText || '';
      const where = `cell ${i + 1}`;
      if (text.includes('Traceback (most recent call last)') ||
          out.querySelector('.jp-RenderedText[data-mime-type="application/vnd.jupyter.error"]'))
        found.push(`${where}: Python traceback: ${text.slice(0, 1500)}`);
      if (text.includes('Error displaying widget'))
        found.push(`${where}: ${text.slice(0, 500)}`);
      if (__UNRENDERED__.test(text))
        found.push(`${where}: widget shown as text, not rendered: ${text.slice(0, 300)}`);
    }
    for (const w of cell.querySelectorAll('.jupyter-widgets-error-widget, .widget-error'))
      found.push(`cell ${i + 1}: widget error: ${(w.innerText || '').slice(0, 500)}`);
  });
  return found;
}
"""

# Marks the first slider and its output region; returns a description for messages.
JS_MARK_FIRST_SLIDER = """
() => {
  for (const el of document.querySelectorAll('[data-effnb]')) el.removeAttribute('data-effnb');
  const nb = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook');
  const slider = nb && nb.querySelector('.widget-slider');
  if (!slider) return null;
  slider.setAttribute('data-effnb', 'slider');
  const cell = slider.closest('.jp-Cell');
  let region = null;
  for (let el = slider.parentElement; el; el = el.parentElement) {
    if (el.querySelector('.widget-output')) { region = el; break; }
    if (el === cell) break;
  }
  let kind = 'widget-output';
  if (!region) {
    kind = 'cell-output-area';
    region = cell ? (cell.querySelector('.jp-Cell-outputArea') || cell) : slider.parentElement;
  }
  region.setAttribute('data-effnb', 'region');
  const shot = (cell && cell.querySelector('.jp-Cell-outputWrapper')) || region;
  if (shot !== region) shot.setAttribute('data-effnb', 'shot');
  const cells = Array.from(nb.querySelectorAll('.jp-Cell'));
  const label = slider.querySelector('.widget-label');
  return {
    kind,
    cell: cells.indexOf(cell) + 1,
    description: label ? label.innerText : '',
    hasHandle: !!slider.querySelector('.noUi-handle'),
  };
}
"""

# What the slider's output shows now: its text (controls removed) and its images.
JS_SNAPSHOT = """
() => {
  const region = document.querySelector('[data-effnb="region"]');
  const slider = document.querySelector('[data-effnb="slider"]');
  if (!region || !slider) return null;
  const outs = region.classList.contains('widget-output') ? [region]
    : Array.from(region.querySelectorAll('.widget-output'));
  const nodes = outs.length ? outs : [region];
  const controls = '.widget-inline-hbox, .widget-label, .widget-readout, .widget-button, ' +
    '.widget-toggle-buttons, .widget-slider';
  let text = '';
  const images = [];
  for (const node of nodes) {
    const copy = node.cloneNode(true);
    for (const c of copy.querySelectorAll(controls)) c.remove();
    text += (copy.innerText || copy.textContent || '') + '\\n';
    for (const img of node.querySelectorAll('img')) images.push(img.currentSrc || img.src);
    for (const cv of node.querySelectorAll('canvas')) {
      try { images.push(cv.toDataURL()); } catch (e) { images.push('canvas:' + e); }
    }
  }
  const handle = slider.querySelector('.noUi-handle');
  const readout = slider.querySelector('.widget-readout');
  return {
    text,
    images,
    value: handle ? handle.getAttribute('aria-valuenow') : null,
    max: handle ? handle.getAttribute('aria-valuemax') : null,
    min: handle ? handle.getAttribute('aria-valuemin') : null,
    readout: readout ? readout.innerText : null,
  };
}
"""


def problems_on(page: Any) -> list[str]:
    """Unrendered widgets, widget errors and tracebacks anywhere in the open notebook."""
    return page.evaluate(JS_PROBLEMS.replace("__UNRENDERED__", f"/{UNRENDERED_RE.pattern}/"))


def numbers_in(text: str) -> list[str]:
    """The numbers a person reads in some output text, as written."""
    return NUMBER_RE.findall(text)


def digest(images: list[str]) -> list[str]:
    """Short fingerprints of image sources (data: URLs are long)."""
    return [hashlib.sha1(src.encode()).hexdigest()[:12] for src in images]


def view_of(snap: dict[str, Any]) -> tuple[list[str], list[str]]:
    """What a person sees in the output: its numbers and its pictures."""
    return numbers_in(snap["text"]), digest(snap["images"])


def state(page: Any, path: str) -> dict[str, Any]:
    """The notebook panel's readiness, kernel status and running-cell count."""
    return page.evaluate(JS_STATE, path)


def wait_until(
    page: Any, check: Any, timeout_s: float, what: str, poll_s: float = 0.5
) -> dict[str, Any]:
    """Poll check() -> (done, info) until done; fail with `what` and the last info."""
    deadline = time.monotonic() + timeout_s
    info: Any = None
    while time.monotonic() < deadline:
        done, info = check()
        if done:
            return info
        page.wait_for_timeout(int(poll_s * 1000))
    pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}; last state: {info}")


def accept_dialog(page: Any) -> None:
    """Accept a JupyterLab dialog (e.g. 'Select Kernel') with its default button."""
    button = page.locator(".jp-Dialog .jp-mod-accept")
    if button.count():
        button.first.click()


def wait_kernel_idle(page: Any, path: str, timeout_s: float, what: str) -> None:
    """Kernel idle, no cell running, for SETTLE_S in a row."""
    since: list[float | None] = [None]

    def check() -> tuple[bool, dict[str, Any]]:
        s = state(page, path)
        if s.get("dialog"):
            accept_dialog(page)
        quiet = s.get("kernel") == "idle" and s.get("running") == 0
        now = time.monotonic()
        if not quiet:
            since[0] = None
        elif since[0] is None:
            since[0] = now
        return quiet and now - since[0] >= SETTLE_S, s

    wait_until(page, check, timeout_s, what)


def crop_to_content(img: Any, margin: int = 12) -> Any:
    """Trim the white space around a screenshot (the output area is as wide as the page).

    Faint pixels and rules across the whole width (JupyterLab's cell borders) are not content.
    """
    import numpy as np

    ink = np.asarray(img.convert("L")) < 200
    ink[ink.mean(axis=1) > 0.8] = False
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if not len(rows):
        return img
    return img.crop(
        (
            max(int(cols[0]) - margin, 0),
            max(int(rows[0]) - margin, 0),
            min(int(cols[-1]) + 1 + margin, img.width),
            min(int(rows[-1]) + 1 + margin, img.height),
        )
    )


def save_before_after(before: bytes, after: bytes, out: Path, title: str) -> None:
    """One PNG: the widget before (left) and after (right) the slider moved."""
    from PIL import Image, ImageDraw, ImageFont

    a = crop_to_content(Image.open(io.BytesIO(before)).convert("RGB"))
    b = crop_to_content(Image.open(io.BytesIO(after)).convert("RGB"))
    try:
        font: Any = ImageFont.load_default(size=16)
    except TypeError:  # Pillow < 10.1
        font = ImageFont.load_default()
    pad, head = 16, 30
    w = a.width + b.width + 3 * pad
    h = max(a.height, b.height) + head + 2 * pad
    canvas = Image.new("RGB", (w, h), "white")
    canvas.paste(a, (pad, head + pad))
    canvas.paste(b, (a.width + 2 * pad, head + pad))
    draw = ImageDraw.Draw(canvas)
    draw.text((pad, pad), f"{title}: before", fill="black", font=font)
    draw.text((a.width + 2 * pad, pad), "after moving the slider", fill="black", font=font)
    x = a.width + 1.5 * pad
    draw.line([(x, pad), (x, h - pad)], fill="#bbbbbb", width=1)
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out, optimize=True)


def shutdown_kernels(lab_url: str) -> None:
    """Stop every kernel session so the next notebook has the CPU to itself."""
    try:
        for session in http_json(f"{lab_url}/api/sessions") or []:
            http_json(f"{lab_url}/api/sessions/{session['id']}", method="DELETE", timeout=30)
    except (OSError, urllib.error.URLError, ValueError) as exc:
        warnings.warn(f"could not shut down the kernels on {lab_url}: {exc}", stacklevel=2)


@pytest.mark.parametrize("notebook", target_notebooks())
def test_widget_slider_changes_output(
    notebook: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Run the notebook in JupyterLab, move its first slider, and see the output change."""
    nb_path = notebooks_dir() / notebook
    assert nb_path.is_file(), f"{nb_path} does not exist: the browser test has nothing to open"
    # Only now start JupyterLab and Chromium (once per module).
    lab_url: str = request.getfixturevalue("lab_url")
    browser_context: Any = request.getfixturevalue("browser_context")

    page = browser_context.new_page()
    page.set_default_timeout(60_000)
    console_errors: list[str] = []
    page.on("pageerror", lambda exc: console_errors.append(f"page error: {exc}"))
    page.on(
        "console",
        lambda msg: (
            console_errors.append(f"console.{msg.type}: {msg.text}")
            if msg.type == "error"
            else None
        ),
    )
    t0 = time.monotonic()
    timings: dict[str, float] = {}

    def context_for_failure() -> str:
        shot = tmp_path / f"failure-{nb_path.stem}.png"
        try:
            page.screenshot(path=str(shot), full_page=True)
        except Exception as exc:  # a crashed page cannot be photographed
            shot = Path(f"<no screenshot: {exc}>")
        errors = "\n".join(console_errors[-10:]) or "none"
        return f"page screenshot: {shot}\nbrowser console errors (last 10):\n{errors}"

    try:
        # 1. Open the notebook, in a workspace of its own so no earlier notebook's tab reopens.
        url = f"{lab_url}/lab/workspaces/effnb-{nb_path.stem}/tree/{notebook}?reset"
        page.goto(url, timeout=PAGE_LOAD_TIMEOUT_S * 1000)
        wait_until(
            page,
            lambda: ((s := state(page, notebook)).get("panel") and s.get("ready"), s),
            PAGE_LOAD_TIMEOUT_S,
            f"JupyterLab to open {notebook}",
        )

        def kernel_started() -> tuple[bool, dict[str, Any]]:
            s = state(page, notebook)
            if s.get("dialog"):  # e.g. "Select Kernel" when the kernelspec is unknown
                accept_dialog(page)
            return s.get("kernel") == "idle", s

        wait_until(page, kernel_started, KERNEL_START_TIMEOUT_S, f"the kernel of {notebook}")
        timings["open"] = time.monotonic() - t0

        # 2. Run All Cells, then wait for the kernel to be idle with no cell running.
        page.evaluate(JS_RUN_ALL, notebook)
        run = wait_until(
            page,
            lambda: ((r := page.evaluate("() => window.__effnbRun")).get("done"), r),
            RUN_ALL_TIMEOUT_S,
            f"'Run All Cells' to finish in {notebook} (EFFNB_BROWSER_RUN_TIMEOUT)",
            poll_s=1.0,
        )
        wait_kernel_idle(page, notebook, RUN_ALL_TIMEOUT_S, "the kernel to be idle after Run All")
        timings["run all"] = time.monotonic() - t0 - timings["open"]
        problems = problems_on(page)
        assert not problems, f"{notebook} after Run All:\n" + "\n".join(problems)
        assert run.get("ok"), f"'Run All Cells' reported a failure in {notebook}: {run}"

        # 3. Find the first slider and its output.
        target = wait_until(
            page,
            lambda: ((m := page.evaluate(JS_MARK_FIRST_SLIDER)) is not None, m),
            WIDGET_RENDER_TIMEOUT_S,
            f"a rendered ipywidgets slider (.widget-slider) in {notebook}",
        )
        assert target["hasHandle"], f"the first slider in {notebook} has no .noUi-handle: {target}"
        page.locator('[data-effnb="slider"]').scroll_into_view_if_needed()
        before = wait_until(
            page,
            lambda: (
                bool((s := page.evaluate(JS_SNAPSHOT)) and s["images"] and numbers_in(s["text"])),
                s,
            ),
            WIDGET_RENDER_TIMEOUT_S,
            f"the output of the first slider (cell {target['cell']}, {target['kind']}) in "
            f"{notebook} to show numbers and a plot",
        )
        # Screenshots show the widget, not JupyterLab's active-cell marker.
        page.add_style_tag(content=".jp-Collapser { visibility: hidden !important; }")
        shot = page.locator('[data-effnb="shot"], [data-effnb="region"]').first
        before_png = shot.screenshot()

        # 4. Move it: focus the noUiSlider handle and press an arrow key a few times.
        key = "ArrowRight"
        if before["value"] is not None and before["max"] is not None:
            value, vmax, vmin = float(before["value"]), float(before["max"]), float(before["min"])
            if vmax - value < (vmax - vmin) / 3:
                key = "ArrowLeft"
        handle = page.locator('[data-effnb="slider"] .noUi-handle').first
        handle.focus()
        for _ in range(KEY_PRESSES):
            handle.press(key)
            page.wait_for_timeout(150)
        moved = page.evaluate(JS_SNAPSHOT)
        how = f"pressing {key} {KEY_PRESSES} times on its handle"
        if moved["value"] == before["value"] and moved["readout"] == before["readout"]:
            # Fallback: click the track a third of the way in from the far side.
            track = page.locator('[data-effnb="slider"] .noUi-target').first
            box = track.bounding_box()
            if box:
                frac = 2 / 3 if key == "ArrowRight" else 1 / 3
                track.click(position={"x": box["width"] * frac, "y": box["height"] / 2})
                how += ", then clicking its track"
            moved = page.evaluate(JS_SNAPSHOT)
        assert moved["value"] != before["value"] or moved["readout"] != before["readout"], (
            f"{how} did not move the slider {target['description']!r}: "
            f"before {before['readout']}, after {moved['readout']}"
        )

        # 5. Wait for the output to change and settle, then compare.
        def changed() -> tuple[bool, dict[str, Any]]:
            s = page.evaluate(JS_SNAPSHOT)
            if s and "Traceback" in s["text"]:
                return True, s  # the callback raised: stop waiting, the check below says so
            return bool(s and s["images"] and view_of(s) != view_of(before)), s

        wait_until(
            page,
            changed,
            WIDGET_CHANGE_TIMEOUT_S,
            f"the output of the slider {target['description']!r} to change after moving it "
            f"from {before['readout']} (before: numbers {numbers_in(before['text'])[:20]})",
        )
        wait_kernel_idle(page, notebook, WIDGET_CHANGE_TIMEOUT_S, "the kernel after the slider")

        def settled() -> tuple[bool, dict[str, Any]]:
            first = page.evaluate(JS_SNAPSHOT)
            page.wait_for_timeout(int(SETTLE_S * 1000))
            return first == page.evaluate(JS_SNAPSHOT), first

        after = wait_until(page, settled, 60, "the widget output to stop changing")
        timings["slider"] = time.monotonic() - t0 - timings["open"] - timings["run all"]
        after_png = shot.screenshot()
        problems = problems_on(page)
        assert not problems, f"{notebook} after moving the slider:\n" + "\n".join(problems)
        nums_before, imgs_before = view_of(before)
        nums_after, imgs_after = view_of(after)
        assert nums_after != nums_before, (
            f"moving the slider {target['description']!r} ({before['readout']} -> "
            f"{after['readout']}) did not change the printed numbers: {nums_before[:20]}"
        )
        assert imgs_after and imgs_after != imgs_before, (
            f"moving the slider {target['description']!r} ({before['readout']} -> "
            f"{after['readout']}) did not change the plot (image fingerprints {imgs_before} "
            f"-> {imgs_after})"
        )
        blocked = browser_context.blocked_requests
        assert not blocked, f"the page tried to reach beyond the local server: {blocked[:5]}"

        out = figures_dir() / f"widgets-{nb_path.stem}.png"
        save_before_after(before_png, after_png, out, f"{notebook}, cell {target['cell']}")
        print(
            f"{notebook}: slider {target['description']!r} {before['readout']} -> "
            f"{after['readout']}; numbers {nums_before[:6]} -> {nums_after[:6]}; "
            + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
            + f"; screenshot {out}"
        )
    except (AssertionError, pytest.fail.Exception) as exc:
        raise AssertionError(f"{exc}\n{context_for_failure()}") from None
    finally:
        page.close()
        shutdown_kernels(lab_url)
