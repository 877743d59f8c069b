"""tpi: checks repeat trigger point injections against sourced clinical and payer rules.

The package is split in two: a core that knows nothing of the terminal (``dates``, ``quantity``,
``names``, ``rules``, ``history``, ``engine``, ``commands``) and a thin Click shell (``cli``) with
renderers (``render``). The core raises :class:`tpi_cli.errors.TpiError` for bad input.
"""

__version__ = "0.1.0"
