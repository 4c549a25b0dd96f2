"""Import the `google.colab` stand-in at interpreter start-up, as Colab's kernel has it imported (make test-colab)."""

import google.colab  # noqa: F401
