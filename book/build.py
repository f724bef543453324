#!/usr/bin/env python3
"""Build the course site, build/book/, from the stored notebooks: in course order, offline.

    python book/build.py [--out build/book] [--jobs N]      (make book runs exactly this)

Nothing here executes a notebook or downloads anything:

1. the notebooks ``notebooks/NN_*.ipynb`` are read as they are stored right now (a file caught
   mid-write is read again) and copied unchanged to ``<out>-src/_stored/``, with the appendix,
   ``docs/*.md``, when there is one (reference facts, errata) and ``figures/``;
2. a Sphinx source tree is staged in ``<out>-src/``: the landing page (``book/landing.md`` with
   the contents in numbering order, each notebook's run time and the README's set-up
   commands), and each notebook with, at its top, its learning goals (the first markdown cell,
   below the title) and how to run it (``make course``; Binder and Colab when
   ``repository_url`` is set in ``book/book.toml``). Each widget is drawn as plain HTML from the
   widget state stored in the notebook (no script, no CDN), followed by the browser test's
   screenshot ``figures/widgets-<stem>.png`` when there is one;
3. ``sphinx-build -c book/`` (myst-nb, sphinx-book-theme) writes the site to a scratch folder,
   which then replaces ``<out>`` (so a half-built site is never served).

``tests/test_book.py`` loads every page of the result in headless Chromium.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import html
import json
import math
import os
import posixpath
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.parse
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

BOOK = Path(__file__).resolve().parent
REPO = BOOK.parent
DEFAULT_OUT = REPO / "build" / "book"

WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
NOTEBOOK_RE = re.compile(r"^(\d\d)_[A-Za-z0-9_]+\.ipynb$")
ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
HEADING_RE = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
NUMBER_PREFIX_RE = re.compile(r"^\d+\s*[·.:\-–—]\s*")


# ---------------------------------------------------------------------------------------------
# Configuration and launch links


def load_config(path: Path = BOOK / "book.toml") -> dict[str, Any]:
    """book/book.toml: repository_url (launch links) and the fallback runtime budgets."""
    with path.open("rb") as f:
        return tomllib.load(f)


def parse_repository_url(url: str) -> tuple[str, str, str] | None:
    """(host, owner/name, branch) of a repository URL, or None if it is empty.

    ``https://github.com/OWNER/NAME`` (branch main), ``.../tree/BRANCH``, ``...NAME.git`` and a
    trailing slash are understood; any other https URL of a git host keeps its full path.
    """
    url = url.strip()
    if not url:
        return None
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ValueError(f"repository_url must be an https URL of the repository, got {url!r}")
    path = parts.path.strip("/")
    branch = "main"
    if "/tree/" in path:
        path, branch = path.split("/tree/", 1)
    path = path.removesuffix(".git")
    if path.count("/") < 1:
        raise ValueError(f"repository_url must name OWNER/REPOSITORY, got {url!r}")
    return parts.netloc.lower(), path, branch.strip("/") or "main"


def launch_links(repository_url: str, notebook: str | None = None) -> dict[str, str]:
    """Binder, Colab and source links for a notebook path (``notebooks/NN_x.ipynb``), or for the
    whole course when notebook is None, built from the one repository URL; {} when it is empty.

    Binder builds the repository's environment.yml; Colab opens notebooks from GitHub only.
    """
    parsed = parse_repository_url(repository_url)
    if parsed is None:
        return {}
    host, path, branch = parsed
    quoted_branch = urllib.parse.quote(branch, safe="")
    if notebook is None:
        lab = "urlpath=" + urllib.parse.quote("lab/tree/notebooks", safe="")
    else:
        lab = "labpath=" + urllib.parse.quote(notebook, safe="")
    links: dict[str, str] = {}
    if host == "github.com":
        links["binder"] = f"https://mybinder.org/v2/gh/{path}/{quoted_branch}?{lab}"
        if notebook is not None:
            links["colab"] = (
                f"https://colab.research.google.com/github/{path}/blob/{branch}/{notebook}"
            )
    elif host == "gitlab.com":
        repo = urllib.parse.quote(path, safe="")
        links["binder"] = f"https://mybinder.org/v2/gl/{repo}/{quoted_branch}?{lab}"
    else:
        repo = urllib.parse.quote(f"https://{host}/{path}", safe="")
        links["binder"] = f"https://mybinder.org/v2/git/{repo}/{quoted_branch}?{lab}"
    base = f"https://{host}/{path}"
    links["source"] = f"{base}/blob/{branch}/{notebook}" if notebook else base
    links["pip"] = f"effnb @ git+{base}@{branch}"
    return links


# ---------------------------------------------------------------------------------------------
# Reading the stored notebooks


def read_stored(path: Path, attempts: int = 10, pause_s: float = 0.5) -> tuple[bytes, dict]:
    """A notebook's bytes and JSON as stored; read again while it is caught mid-write."""
    last: Exception | None = None
    for _ in range(attempts):
        raw = path.read_bytes()
        try:
            nb = json.loads(raw)
            if isinstance(nb, dict) and isinstance(nb.get("cells"), list):
                return raw, nb
            last = ValueError("no cells list")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            last = exc
        time.sleep(pause_s)
    raise RuntimeError(f"{path} is not a readable notebook ({last}); is it being written?")


def stored_notebooks(root: Path) -> list[Path]:
    """notebooks/NN_*.ipynb in course order (by number, then name)."""
    found = [p for p in root.glob("*.ipynb") if NOTEBOOK_RE.match(p.name)]
    return sorted(found, key=lambda p: (int(p.name[:2]), p.name))


def text_of(value: Any) -> str:
    """nbformat stores text as a string or a list of lines."""
    return "".join(value) if isinstance(value, list) else str(value or "")


def stored_runtime_s(nb: dict) -> float | None:
    """Seconds the stored run spent executing the notebook's code cells, or None.

    The sum over code cells of (shell.execute_reply - iopub.execute_input), the timestamps that
    nbclient (``make run-notebooks``) records in every cell; gaps between cells of an
    interactive session are not counted. None unless most code cells carry them.
    """
    code = [c for c in nb["cells"] if c.get("cell_type") == "code" and text_of(c.get("source"))]
    total, timed = 0.0, 0
    for cell in code:
        ex = (cell.get("metadata") or {}).get("execution") or {}
        start = ex.get("iopub.execute_input") or ex.get("iopub.status.busy")
        end = ex.get("shell.execute_reply") or ex.get("iopub.status.idle")
        if not (start and end):
            continue
        try:
            seconds = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
        except ValueError:
            continue
        if seconds >= 0:
            total += seconds
            timed += 1
    if not code or timed < max(1, math.ceil(0.8 * len(code))):
        return None
    return total


def budget_minutes(config: dict[str, Any], stem: str) -> float:
    """The runtime budget of a notebook from book.toml (by stem, then by number, then default)."""
    table = config.get("runtime_budget_minutes") or {}
    for key in (stem, stem[:2]):
        if key in table:
            return float(table[key])
    return float(table.get("default", 3))


def format_minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 60 else f"{seconds / 60:.1f} min"


# ---------------------------------------------------------------------------------------------
# Markdown helpers


def split_title(markdown: str) -> tuple[str | None, str]:
    """(the first level-1 heading, the rest) of a markdown cell; (None, text) without one."""
    lines = markdown.splitlines()
    for i, line in enumerate(lines):
        m = HEADING_RE.match(line)
        if m and len(m.group(1)) == 1:
            return m.group(2), "\n".join(lines[:i] + lines[i + 1 :]).strip("\n")
        if line.strip():
            break
    return None, markdown


def split_at_heading(markdown: str) -> tuple[str, str]:
    """(text before the first heading outside code fences, the rest): a heading cannot sit
    inside an admonition."""
    lines = markdown.splitlines()
    fence: str | None = None
    for i, line in enumerate(lines):
        stripped = line.lstrip()
        m = re.match(r"(`{3,}|~{3,}|:{3,})", stripped)
        if m:
            if fence is None:
                fence = m.group(1)[0] * len(m.group(1))
            elif stripped.startswith(fence):
                fence = None
            continue
        if fence is None and HEADING_RE.match(line):
            return "\n".join(lines[:i]).strip("\n"), "\n".join(lines[i:])
    return markdown.strip("\n"), ""


def fence_for(body: str, char: str = "`") -> str:
    """A directive fence longer than any run of the same character inside body."""
    runs = [len(m) for m in re.findall(re.escape(char) + "{3,}", body)]
    return char * max(3, max(runs, default=0) + 1)


def admonition(title: str, body: str, css_class: str) -> str:
    fence = fence_for(body)
    return f"{fence}{{admonition}} {title}\n:class: {css_class}\n\n{body}\n{fence}\n"


def first_paragraph(markdown: str) -> str:
    """The first paragraph of plain text, on one line (for the contents table)."""
    for block in re.split(r"\n\s*\n", markdown.strip()):
        block = block.strip()
        if block and not block.startswith(("#", "```", "$$", "|", "<", "!")):
            return " ".join(line.strip() for line in block.splitlines())
    return ""


def table_cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


LINK_RE = re.compile(
    r"(?<!!)\[((?:[^\[\]]|\[[^\]]*\])*)\]\(\s*<?([^)\s>]+)>?((?:\s+\"[^\"]*\")?)\s*\)"
)
LINK_DEF_RE = re.compile(r"^( {0,3}\[[^\]]+\]:[ \t]*)<?([^\s>]+)>?(.*)$", re.M)
CODE_SPAN_RE = re.compile(r"(`+)(?:.|\n)*?(?<!`)\1(?!`)")


def repository_blob_base(repository_url: str) -> str | None:
    """https://host/owner/name/blob/branch for links to the repository's files, or None."""
    parsed = parse_repository_url(repository_url)
    if parsed is None:
        return None
    host, path, branch = parsed
    return f"https://{host}/{path}/blob/{branch}"


def rewrite_links(markdown: str, where: str, in_book: set[str], repository_url: str) -> str:
    """Point links to repository files that the book does not hold (effnb/..., README.md, a
    notebook that is gone) at the repository when its URL is set, else keep only their text,
    so that no page of the site links to a file it does not have. ``where`` is the page's
    path in the repository (notebooks/NN_x.ipynb, docs/x.md); code is left alone."""
    base = repository_blob_base(repository_url)

    def outside(url: str) -> tuple[str, str] | None:
        if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", url) or url.startswith(("#", "/")):
            return None  # another site, mailto:, an anchor on the page, a site-absolute path
        path, _, fragment = url.partition("#")
        joined = posixpath.join(posixpath.dirname(where), urllib.parse.unquote(path))
        resolved = posixpath.normpath(joined)
        if resolved.startswith("..") or resolved in in_book:
            return None
        return resolved, fragment

    def target(resolved: str, fragment: str) -> str:
        return f"{base}/{resolved}" + (f"#{fragment}" if fragment else "")

    def inline(m: re.Match[str]) -> str:
        found = outside(m.group(2))
        if found is None:
            return m.group(0)
        return f"[{m.group(1)}]({target(*found)}{m.group(3)})" if base else m.group(1)

    def definition(m: re.Match[str]) -> str:
        found = outside(m.group(2))
        if found is None:
            return m.group(0)
        return f"{m.group(1)}{target(*found) if base else '#'}{m.group(3)}"

    def prose(text: str) -> str:
        pieces, last = [], 0
        for code in CODE_SPAN_RE.finditer(text):
            pieces.append(LINK_RE.sub(inline, text[last : code.start()]))
            pieces.append(code.group(0))
            last = code.end()
        pieces.append(LINK_RE.sub(inline, text[last:]))
        return LINK_DEF_RE.sub(definition, "".join(pieces))

    lines = markdown.split("\n")
    in_code, fence = [], None
    for line in lines:
        stripped = line.strip()
        if fence is None:
            m = re.match(r"(`{3,}|~{3,})", stripped)
            fence = m.group(1) if m else None
            in_code.append(fence is not None)
        else:
            in_code.append(True)
            if stripped.startswith(fence) and set(stripped) == {fence[0]}:
                fence = None
    result: list[str] = []
    run: list[str] = []
    for line, code in zip(lines, in_code, strict=True):
        if not code:
            run.append(line)
            continue
        if run:
            result.append(prose("\n".join(run)))
            run = []
        result.append(line)
    if run:
        result.append(prose("\n".join(run)))
    return "\n".join(result)


def readme_summaries(readme: Path) -> dict[str, str]:
    """stem -> "what it shows", from the README's table of notebooks, where it has one."""
    try:
        text = readme.read_text(encoding="utf-8")
    except OSError:
        return {}
    rows = re.findall(
        r"^\|\s*\[`?(\d\d_[A-Za-z0-9_]+)`?\]\([^)]*\)\s*\|\s*(.+?)\s*\|\s*$", text, re.M
    )
    return {stem: summary for stem, summary in rows}


def readme_setup(readme: Path) -> str:
    """The README's quick-start code block (the two commands), as a fenced block."""
    try:
        text = readme.read_text(encoding="utf-8")
        section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
        block = re.search(r"```(?:sh|bash)?\n(.*?)```", section, re.S)
        if block:
            return f"```sh\n{block.group(1).rstrip()}\n```"
    except (OSError, IndexError):
        pass
    return (
        "```sh\nmake course   # set up, then open JupyterLab on notebooks/\n"
        "make test     # set up, then run every check\n```"
    )


# ---------------------------------------------------------------------------------------------
# Widgets, drawn from the state stored in the notebook (no kernel, no script)

BOX_MODELS = {"BoxModel": "vbox", "VBoxModel": "vbox", "HBoxModel": "hbox", "GridBoxModel": "hbox"}
CHOICE_MODELS = {"DropdownModel", "SelectModel", "RadioButtonsModel", "ToggleButtonsModel"}
TEXT_MODELS = {
    "TextModel",
    "IntTextModel",
    "FloatTextModel",
    "BoundedIntTextModel",
    "BoundedFloatTextModel",
    "PasswordModel",
    "ComboboxModel",
}


def _ref(value: Any) -> str | None:
    if isinstance(value, str) and value.startswith("IPY_MODEL_"):
        return value[len("IPY_MODEL_") :]
    return None


def _format(value: Any, fmt: str | None) -> str:
    try:
        if fmt:
            return format(value, fmt.lstrip("%") if fmt.startswith("%") else fmt)
    except (ValueError, TypeError):
        pass
    return str(value)


def _label(s: dict) -> str:
    text = s.get("description") or ""
    return text if s.get("description_allow_html") else html.escape(text)


def _control(s: dict, inner: str) -> str:
    return f'<div class="effnb-w-control"><label>{_label(s)}</label>{inner}</div>'


def render_output_html(out: dict) -> str:
    """One stored output (of an ipywidgets Output) as static HTML."""
    kind = out.get("output_type")
    if kind == "stream":
        text = ANSI_RE.sub("", text_of(out.get("text")))
        return f'<pre class="effnb-w-stream">{html.escape(text)}</pre>'
    if kind == "error":
        text = ANSI_RE.sub("", "\n".join(out.get("traceback") or []))
        return f'<pre class="effnb-w-error">{html.escape(text)}</pre>'
    data = out.get("data") or {}
    alt = html.escape(text_of(data.get("text/plain"))[:200], quote=True)
    for mime in ("image/svg+xml", "image/png", "image/jpeg", "image/gif"):
        if mime in data:
            payload = text_of(data[mime])
            if mime == "image/svg+xml":
                payload = base64.b64encode(payload.encode()).decode()
            payload = "".join(payload.split())
            return f'<img src="data:{mime};base64,{payload}" alt="{alt}">'
    if "text/html" in data:
        return f'<div class="effnb-w-html">{text_of(data["text/html"])}</div>'
    for mime in ("text/markdown", "text/latex", "text/plain"):
        if mime in data:
            return f"<pre>{html.escape(ANSI_RE.sub('', text_of(data[mime])))}</pre>"
    return ""


def render_widget_html(
    model_id: str, state: dict[str, Any], depth: int = 0, seen: set[str] | None = None
) -> str:
    """A widget and its children as static HTML from the stored widget state; the model names
    drawn are added to seen."""
    model = state.get(model_id)
    if depth > 30 or not isinstance(model, dict):
        return '<span class="effnb-w-missing">[a widget whose state is not stored]</span>'
    name = model.get("model_name", "")
    if seen is not None:
        seen.add(name)
    s = model.get("state") or {}
    layout = (state.get(_ref(s.get("layout")) or "") or {}).get("state") or {}
    if layout.get("display") == "none" or layout.get("visibility") == "hidden":
        return ""
    if name in BOX_MODELS or name in ("AccordionModel", "TabModel", "StackModel"):
        kind = BOX_MODELS.get(name, "vbox")
        titles = list(s.get("titles") or s.get("_titles", {}).values() or [])
        parts = []
        for i, child in enumerate(s.get("children") or []):
            cid = _ref(child)
            if not cid:
                continue
            title = titles[i] if i < len(titles) and titles[i] else ""
            head = f"<strong>{html.escape(str(title))}</strong>" if title else ""
            parts.append(head + render_widget_html(cid, state, depth + 1, seen))
        return f'<div class="effnb-w-{kind}">{"".join(parts)}</div>'
    if name in ("IntSliderModel", "FloatSliderModel", "FloatLogSliderModel"):
        value = s.get("value", 0)
        lo, hi, step = s.get("min", 0), s.get("max", 100), s.get("step", 1)
        position = value
        if name == "FloatLogSliderModel":
            base = s.get("base", 10) or 10
            position = math.log(value, base) if isinstance(value, int | float) and value > 0 else lo
        readout = _format(value, s.get("readout_format"))
        inner = (
            f'<input type="range" disabled min="{lo}" max="{hi}" step="{step}" '
            f'value="{position}" aria-label="{html.escape(s.get("description") or "slider")}">'
            f"<output>{html.escape(readout)}</output>"
        )
        return _control(s, inner)
    if name in ("IntRangeSliderModel", "FloatRangeSliderModel"):
        lo_hi = s.get("value") or ["", ""]
        readout = " – ".join(_format(v, s.get("readout_format")) for v in lo_hi)
        return _control(s, f"<output>{html.escape(readout)}</output>")
    if name == "SelectionSliderModel":
        labels = s.get("_options_labels") or []
        index = s.get("index") or 0
        current = labels[index] if 0 <= index < len(labels) else ""
        inner = (
            f'<input type="range" disabled min="0" max="{max(len(labels) - 1, 0)}" '
            f'value="{index}"><output>{html.escape(str(current))}</output>'
        )
        return _control(s, inner)
    if name in CHOICE_MODELS or name == "SelectMultipleModel":
        labels = s.get("_options_labels") or []
        chosen = s.get("index")
        chosen = set(chosen) if isinstance(chosen, list) else {chosen}
        options = "".join(
            f"<option{' selected' if i in chosen else ''}>{html.escape(str(label))}</option>"
            for i, label in enumerate(labels)
        )
        multiple = " multiple" if name == "SelectMultipleModel" else ""
        return _control(s, f"<select disabled{multiple}>{options}</select>")
    if name in ("IntProgressModel", "FloatProgressModel"):
        lo, hi, value = s.get("min", 0) or 0, s.get("max", 100) or 0, s.get("value", 0) or 0
        readout = _format(value, None)
        inner = (
            f'<progress max="{hi - lo}" value="{min(max(value - lo, 0), hi - lo)}"></progress>'
            f"<output>{html.escape(readout)}</output>"
        )
        return _control(s, inner)
    if name in ("CheckboxModel", "ToggleButtonModel"):
        checked = " checked" if s.get("value") else ""
        return _control(s, f'<input type="checkbox" disabled{checked}>')
    if name in TEXT_MODELS:
        value = html.escape(str(s.get("value", "")), quote=True)
        return _control(s, f'<input type="text" disabled value="{value}">')
    if name == "TextareaModel":
        return _control(s, f"<textarea disabled>{html.escape(str(s.get('value', '')))}</textarea>")
    if name == "LabelModel":
        return f"<span>{html.escape(str(s.get('value', '')))}</span>"
    if name in ("HTMLModel", "HTMLMathModel"):
        return f"<div>{s.get('value', '')}</div>"
    if name == "ButtonModel":
        return f"<button disabled>{html.escape(s.get('description') or '')}</button>"
    if name == "OutputModel":
        outs = "".join(render_output_html(o) for o in s.get("outputs") or [])
        return f'<div class="effnb-w-output">{outs}</div>' if outs else ""
    return f'<span class="effnb-w-other">[{html.escape(name or "widget")}]</span>'


WIDGET_NOTE = (
    "Widget as stored in the notebook, drawn without a kernel: its controls show where they were "
    "left and do not move here. Run the notebook (see <em>Run this notebook</em> at the top) to "
    "use it."
)


INTERACTIVE_MODELS = (
    {
        "IntSliderModel",
        "FloatSliderModel",
        "FloatLogSliderModel",
        "IntRangeSliderModel",
        "FloatRangeSliderModel",
        "SelectionSliderModel",
        "SelectMultipleModel",
        "CheckboxModel",
        "ToggleButtonModel",
        "TextareaModel",
        "ButtonModel",
    }
    | CHOICE_MODELS
    | TEXT_MODELS
)
SLIDER_MODELS = {m for m in INTERACTIVE_MODELS if "Slider" in m}


def widget_output(
    model_id: str | None, state: dict[str, Any], seen: set[str] | None = None
) -> tuple[dict, bool]:
    """The display_data output that replaces a widget view, and whether its state was stored.

    The note on running the notebook goes with widgets that have controls (not, e.g., with a
    progress bar); seen collects the model names drawn.
    """
    stored = bool(model_id) and model_id in state
    seen = set() if seen is None else seen
    if stored:
        body = render_widget_html(model_id, state, seen=seen)
        note = WIDGET_NOTE if seen & INTERACTIVE_MODELS else ""
        kind = "drawn"
    else:
        body = ""
        note = (
            "This notebook shows an interactive widget here, but its state is not stored in the "
            "notebook (save it with widget state, as <code>make run-notebooks</code> does). Run "
            "the notebook to see it."
        )
        kind = "missing"
    note = f'<p class="effnb-widget-note">{note}</p>' if note else ""
    markup = f'<div class="effnb-widget" data-effnb-widget="{kind}">{note}{body}</div>'

    return {"output_type": "display_data", "metadata": {}, "data": {"text/html": markup}}, stored


# ---------------------------------------------------------------------------------------------
# Staging one notebook


@dataclass
class PageInfo:
    stem: str
    number: int
    title: str
    summary: str
    runtime_s: float | None
    budget_min: float
    widget_views: int = 0
    widgets_drawn: int = 0
    widget_screenshot: str | None = None
    exercises: int = 0
    links: dict[str, str] = field(default_factory=dict)


def launch_box(stem: str, links: dict[str, str]) -> str:
    """The "Run this notebook" admonition of a notebook page."""
    items = [
        f"**On your machine:** in a clone of the repository, `make course` sets everything up and "
        f"opens JupyterLab on `notebooks/`; open `{stem}.ipynb` there. Or "
        f"{{download}}`download this notebook <../_stored/{stem}.ipynb>` as stored (it imports "
        f"the `effnb` package of the repository)."
    ]
    if "binder" in links:
        items.append(
            f"**Binder:** [open it in JupyterLab on Binder]({links['binder']}) (builds the "
            "repository's `environment.yml`; the first start takes a few minutes)."
        )
    if "colab" in links:
        items.append(
            f"**Colab:** [open it in Colab]({links['colab']}), then run "
            f'`%pip install "{links["pip"]}"` in a first cell.'
        )
    if "source" in links:
        items.append(f"**Source:** [the notebook in the repository]({links['source']}).")
    return admonition("Run this notebook", "\n".join(f"- {i}" for i in items), "effnb-launch")


def markdown_cell(source: str, cell_id: str) -> dict:
    return {"cell_type": "markdown", "id": cell_id, "metadata": {}, "source": source}


def stage_notebook(
    nb: dict,
    stem: str,
    config: dict[str, Any],
    figures: Path,
    summaries: dict[str, str],
    in_book: set[str] | None = None,
) -> tuple[dict, PageInfo]:
    """The notebook as the book shows it, and what the landing page and the test need.

    in_book: the repository paths the book holds (notebooks/..., docs/..., figures/...); links
    to any other file are rewritten (rewrite_links). None leaves links as they are.
    """
    nb = json.loads(json.dumps(nb))  # a deep copy
    links = launch_links(config.get("repository_url", ""), f"notebooks/{stem}.ipynb")
    metadata = nb.setdefault("metadata", {})
    widgets = metadata.pop("widgets", None) or {}  # myst-nb would add CDN scripts for it
    state = (widgets.get(WIDGET_STATE) or {}).get("state") or {}
    cells: list[dict] = nb["cells"]

    # Title, learning goals and launch links at the top.
    first_md = next((i for i, c in enumerate(cells) if c.get("cell_type") == "markdown"), None)
    title, intro = None, ""
    if first_md is not None:
        title, intro = split_title(text_of(cells[first_md].get("source")))
    if title is None:
        title = f"{stem[:2]} · {stem[3:].replace('_', ' ')}"
    goals, rest = split_at_heading(intro)
    top = [f"# {title}", ""]
    if goals.strip():
        top.append(admonition("Learning goals", goals, "effnb-goals"))
    top.append(launch_box(stem, links))
    if rest.strip():
        top += ["", rest]
    if first_md is not None:
        del cells[first_md]  # its title and text open the page
    cells.insert(0, markdown_cell("\n".join(top), "effnb-book-top"))

    info = PageInfo(
        stem=stem,
        number=int(stem[:2]),
        title=title,
        summary=summaries.get(stem) or first_paragraph(goals),
        runtime_s=None,
        budget_min=budget_minutes(config, stem),
        links=links,
    )

    # Widgets drawn from their stored state; exercises counted (myst-nb marks them tag_exercise).
    shot = figures / f"widgets-{stem}.png"
    staged: list[dict] = []
    has_slider = False
    for cell in cells:
        staged.append(cell)
        if cell.get("cell_type") != "code":
            continue
        if "exercise" in ((cell.get("metadata") or {}).get("tags") or []):
            info.exercises += 1
        outputs = []
        for out in cell.get("outputs") or []:
            view = (out.get("data") or {}).get(WIDGET_VIEW)
            if view is None:
                outputs.append(out)
                continue
            seen: set[str] = set()
            replacement, stored = widget_output((view or {}).get("model_id"), state, seen)
            outputs.append(replacement)
            info.widget_views += 1
            info.widgets_drawn += stored
            has_slider = has_slider or bool(seen & SLIDER_MODELS) or not stored
        cell["outputs"] = outputs
        # The browser test's screenshot shows the notebook's first slider: put it after that.
        if has_slider and info.widget_screenshot is None and shot.is_file():
            info.widget_screenshot = shot.name
            staged.append(
                markdown_cell(
                    f":::{{figure}} ../figures/{shot.name}\n:figclass: effnb-widget-shot\n"
                    f":alt: The widget of {stem} in JupyterLab, before and after moving its "
                    "first slider\n\nThe same widget live in JupyterLab, before and after "
                    "moving its first slider (a screenshot from the browser test, "
                    "`tests/test_browser.py`).\n:::",
                    "effnb-book-widget-shot",
                )
            )
    if in_book is not None:
        for cell in staged:
            if cell.get("cell_type") == "markdown":
                cell["source"] = rewrite_links(
                    text_of(cell.get("source")),
                    f"notebooks/{stem}.ipynb",
                    in_book,
                    config.get("repository_url", ""),
                )
    nb["cells"] = staged
    return nb, info


# ---------------------------------------------------------------------------------------------
# The landing page


def landing_page(
    pages: list[PageInfo], docs: list[tuple[str, str]], config: dict, readme: Path
) -> str:
    template = (BOOK / "landing.md").read_text(encoding="utf-8")
    rows = ["| | notebook | what it covers | runs in (2-core CPU) |", "|---|---|---|---|"]
    from_budget = False
    for p in pages:
        if p.runtime_s is not None:
            runtime = f"{format_minutes(p.runtime_s)} (stored run)"
        else:
            runtime = f"≤ {p.budget_min:g} min (budget)"
            from_budget = True
        name = NUMBER_PREFIX_RE.sub("", p.title)
        rows.append(
            f"| {p.number:02d} | [{table_cell(name)}](notebooks/{p.stem}.ipynb) "
            f"| {table_cell(p.summary)} | {runtime} |"
        )
    notes = [
        "",
        "Run times: *stored run* is the time the notebook's code cells took in the run that "
        "produced the outputs shown here (from the timestamps stored in the notebook; the course "
        "machines are 2-core CPUs, sometimes shared, so yours may differ).",
    ]
    if from_budget:
        notes.append(
            "*Budget* marks a notebook stored without those timestamps: the course's limit for "
            "it on a 2-core CPU from a cold cache."
        )
    links = launch_links(config.get("repository_url", ""))
    if links:
        launch = (
            "Or run it in the cloud: [the whole course on Binder]"
            f"({links['binder']}) (JupyterLab with the repository's `environment.yml`), or "
            "each notebook in Binder or Colab from the links at the top of its page. The "
            f"repository: <{links['source']}>."
        )
    else:
        launch = (
            "Every notebook page says how to run it and offers the notebook for download, as "
            "stored."
        )
    appendix = ""
    if docs:
        items = "\n".join(f"- [{table_cell(t)}](docs/{n}.md)" for n, t in docs)
        appendix = (
            "\n## Appendix\n\nThe reference facts the notebooks check against, and the errors "
            f"in common tutorial code that the course corrects:\n\n{items}\n"
        )
    page = (
        template.replace("{{notebooks}}", "\n".join(rows + notes))
        .replace("{{setup}}", readme_setup(readme))
        .replace("{{launch}}", launch)
        .replace("{{appendix}}", appendix)
    )
    left = re.findall(r"\{\{\w+\}\}", page)
    if left:
        raise ValueError(f"book/landing.md has placeholders build.py does not fill: {left}")
    toctrees = [
        "",
        "```{toctree}\n:caption: Notebooks\n:hidden:\n\n"
        + "\n".join(f"notebooks/{p.stem}" for p in pages)
        + "\n```",
    ]
    if docs:
        toctrees.append(
            "```{toctree}\n:caption: Appendix\n:hidden:\n\n"
            + "\n".join(f"docs/{n}" for n, _ in docs)
            + "\n```"
        )
    return page.rstrip() + "\n" + "\n\n".join(toctrees) + "\n"


# ---------------------------------------------------------------------------------------------
# The build


def stage(src: Path, config: dict[str, Any], repo: Path = REPO) -> dict[str, Any]:
    """Write the Sphinx source tree of repo's course into src; return the manifest (also
    written there)."""
    for sub in ("_stored", "notebooks", "docs", "figures"):
        (src / sub).mkdir(parents=True, exist_ok=True)
    figures = repo / "figures"
    if figures.is_dir():
        for f in figures.iterdir():
            if f.is_file():
                shutil.copy2(f, src / "figures" / f.name)
    summaries = readme_summaries(repo / "README.md")
    pages: list[PageInfo] = []
    notebooks = stored_notebooks(repo / "notebooks")
    if not notebooks:
        raise RuntimeError("no notebooks/NN_*.ipynb to build the book from")
    numbers = [p.name[:2] for p in notebooks]
    if len(set(numbers)) != len(numbers):
        raise RuntimeError(f"two notebooks share a number: {[p.name for p in notebooks]}")
    doc_paths = sorted((repo / "docs").glob("*.md"))
    in_book = {f"notebooks/{p.name}" for p in notebooks} | {f"docs/{p.name}" for p in doc_paths}
    in_book |= {f"figures/{p.name}" for p in (src / "figures").iterdir()}
    repository_url = config.get("repository_url", "")
    for path in notebooks:
        raw, nb = read_stored(path)
        (src / "_stored" / path.name).write_bytes(raw)
        staged, info = stage_notebook(nb, path.stem, config, figures, summaries, in_book)
        info.runtime_s = stored_runtime_s(nb)
        (src / "notebooks" / path.name).write_text(json.dumps(staged, indent=1), encoding="utf-8")
        pages.append(info)
    docs: list[tuple[str, str]] = []
    for path in doc_paths:
        text = rewrite_links(
            path.read_text(encoding="utf-8"), f"docs/{path.name}", in_book, repository_url
        )
        title, _ = split_title(text)
        if title is None:
            title = path.stem.replace("_", " ").capitalize()
            text = f"# {title}\n\n{text}"
        (src / "docs" / path.name).write_text(text, encoding="utf-8")
        docs.append((path.stem, title))
    docs.sort(key=lambda d: (d[1].casefold(), d[0]))  # "Appendix A: ..." before "Appendix B: ..."
    landing = landing_page(pages, docs, config, repo / "README.md")
    (src / "index.md").write_text(landing, encoding="utf-8")
    manifest = {
        "repository_url": config.get("repository_url", ""),
        "notebooks": [asdict(p) for p in pages],
        "docs": [n for n, _ in docs],
    }
    (src / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return manifest


@contextlib.contextmanager
def site_lock(out: Path) -> Iterator[None]:
    """Held while the site in out is replaced, and by tests/test_book.py while it copies it:
    several `make test` runs in one checkout each build the book."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / f".{out.name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def replace_dir(new: Path, target: Path) -> None:
    """Move new into place at target, replacing what was there (call under site_lock)."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        target.rename(old)
    new.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def build(
    out: Path = DEFAULT_OUT,
    jobs: int = 1,
    quiet: bool = True,
    timeout_s: float = 900,
    repo: Path = REPO,
) -> dict[str, Any]:
    """Stage the sources and run Sphinx; the site ends up in out, its sources in out-src."""
    t0 = time.monotonic()
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    config = load_config()
    scratch = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        src, site = scratch / "src", scratch / "site"
        manifest = stage(src, config, repo)
        warnings_log = scratch / "sphinx-warnings.log"
        cmd = [
            sys.executable,
            "-m",
            "sphinx",
            "-b",
            "html",
            "-E",
            "-j",
            str(jobs),
            "-c",
            str(BOOK),
            "-d",
            str(scratch / "doctrees"),
            "-w",
            str(warnings_log),
            str(src),
            str(site),
        ]
        if quiet:
            cmd.insert(3, "-q")
        env = dict(os.environ, PYDEVD_DISABLE_FILE_VALIDATION="1")
        result = subprocess.run(cmd, cwd=REPO, env=env, check=False, timeout=timeout_s)
        if result.returncode != 0:
            raise RuntimeError(f"sphinx-build failed ({result.returncode}); see above")
        warnings = warnings_log.read_text(encoding="utf-8", errors="replace").strip()
        shutil.copy2(warnings_log, src / "sphinx-warnings.log")
        with site_lock(out):
            replace_dir(site, out)
            replace_dir(src, out.with_name(out.name + "-src"))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    manifest["seconds"] = round(time.monotonic() - t0, 1)
    manifest["warnings"] = warnings.splitlines() if warnings else []
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="default: build/book")
    parser.add_argument("--jobs", type=int, default=1, help="Sphinx processes (default 1)")
    parser.add_argument("--verbose", action="store_true", help="Sphinx's progress output")
    args = parser.parse_args(argv)
    manifest = build(args.out, args.jobs, quiet=not args.verbose)
    pages = manifest["notebooks"]
    print(
        f"book: {len(pages)} notebooks, {len(manifest['docs'])} appendix pages, "
        f"{sum(p['widget_views'] for p in pages)} widgets, "
        f"{sum(p['exercises'] for p in pages)} exercises -> {args.out} "
        f"in {manifest['seconds']:.0f} s"
    )
    for line in manifest["warnings"]:
        print(f"  sphinx warning: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
