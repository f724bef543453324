"""Sphinx configuration of the course site.

`make book` (book/build.py) stages the stored notebooks and the pages around them in
build/book-src/ and runs ``sphinx-build -c book/`` on it; this file is that configuration.

Offline by construction: notebooks are never executed, MathJax is served from the site (the
copy that the PyPI package sphinx-mathjax-offline ships; Sphinx's default loads it from a CDN),
myst-nb's ipywidgets scripts (require.js and the widget manager, from CDNs) are switched off
because build.py draws each widget from its stored state as plain HTML, and the theme's own
fonts and icons are in its package. tests/test_book.py loads every page with every request
outside 127.0.0.1 blocked and recorded, so a new version that fetched anything would fail it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

BOOK = Path(__file__).resolve().parent

project = "effnb"
author = "the effnb authors"
copyright = "the effnb authors, MIT licence"
language = "en"

extensions = ["myst_nb"]

# -- sources ---------------------------------------------------------------------------------
# _stored/ holds the notebooks exactly as stored (offered for download); not pages of their own.
exclude_patterns = ["_stored", ".doctrees", "**/.ipynb_checkpoints"]
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 4

# -- notebooks: the stored outputs are what readers see ---------------------------------------
nb_execution_mode = "off"
nb_ipywidgets_js: dict[str, dict[str, str]] = {}  # nothing from a CDN (see the docstring)
nb_merge_streams = True

# -- math, served by the site ----------------------------------------------------------------
_mathjax_spec = importlib.util.find_spec("sphinx-mathjax-offline")
if _mathjax_spec is None or _mathjax_spec.origin is None:
    raise RuntimeError(
        "the book needs the PyPI package sphinx-mathjax-offline (MathJax served by the site): "
        "pip install -e '.[book]' (make book does)"
    )
_MATHJAX_STATIC = Path(_mathjax_spec.origin).parent / "static"  # holds mathjax/
mathjax_path = "mathjax/tex-chtml.js"  # relative to _static/

# -- HTML ------------------------------------------------------------------------------------
html_theme = "sphinx_book_theme"
html_title = "effnb: efficient CNNs, as a course that runs"
html_static_path = [str(BOOK / "static"), str(_MATHJAX_STATIC)]
html_css_files = ["effnb-book.css"]
html_favicon = str(BOOK / "static" / "favicon.svg")
html_copy_source = False  # the stored notebooks are offered for download instead
html_show_sourcelink = False
html_theme_options = {
    "home_page_in_toc": True,
    "show_navbar_depth": 1,
    "show_toc_level": 2,
    "use_download_button": False,  # would offer the staged copy; each page links the stored one
    "use_fullscreen_button": False,
    "use_repository_button": False,  # launch links come from book/book.toml (build.py)
    "navigation_with_keys": False,
}
# Light/dark follows the reader's system; unset, the theme logs a console error on a first visit.
html_context = {"default_mode": "auto"}
