"""Plain functions behind each notebook's figures and widgets, one module per notebook.

Each module names the notebook that explains it; the notebooks call these functions in
checked cells and through ``effnb.widgets.explorer``.
"""
