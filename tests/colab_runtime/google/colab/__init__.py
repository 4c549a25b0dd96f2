"""A stand-in for Colab's `google.colab` package, for `make test-colab` only.

A Colab kernel has `google.colab` imported before the first cell runs; every chapter's install cell checks for it
in `sys.modules`. With this folder on PYTHONPATH, sitecustomize.py imports this module at start-up, so the install
cell takes its Colab branch. Nothing of Colab's API is imitated: the chapters call none of it.
"""

IN_STAND_IN = True
