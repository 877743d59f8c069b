"""tpi: checks repeat trigger point injections against sourced clinical and payer rules.

The package is split in two: a core that knows nothing of the terminal and a thin Click shell
(``cli``) with renderers (``render``). The core: words and numbers (``names``, ``dates``,
``quantity``), the rules file (``yamlnodes``, ``rules``), histories (``model``, ``history``,
``history_json``, ``jsonpos``), the rule engine (``engine``) and the commands' computations
(``check`` for check and next, ``validate`` and ``parallel``, ``totals``), each returning a
result object (``results``). It raises :class:`tpi_cli.errors.TpiError` for bad input.
"""

__version__ = "0.1.0"
