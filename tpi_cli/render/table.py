"""Tables for people, drawn with rich (imported only here).

All user and rules text goes in as ``rich.text.Text``, never as markup, so a site named
``[bold]x`` prints as typed. Colour follows rich: none when stdout is not a terminal, ``NO_COLOR``,
``FORCE_COLOR`` and ``TERM=dumb`` respected.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from tpi_cli.errors import printable
from tpi_cli.quantity import MASS, PG_PER_MG
from tpi_cli.render.common import DISCLAIMER, iso, mg_text, rule_group
from tpi_cli.results import ALLOWED, NOT_YET, CheckResult, ForecastResult, RuleOutcome, TotalsResult
from tpi_cli.rules import Rule, Rules

if TYPE_CHECKING:
    from tpi_cli.dates import Duration


def _text(text: str, style: str = "") -> Text:
    """Text for rich, never markup, with control characters escaped (see ``printable``)."""
    return Text(printable(text), style=style)


_STATUS_STYLE = {"pass": "green", "fail": "bold red", "warn": "yellow", "skip": "dim"}


class _Console(Console):
    def on_broken_pipe(self) -> None:
        # rich would exit 1, a verdict's code: the caller reports the cut-short output instead.
        self.quiet = True
        raise BrokenPipeError(32, "Broken pipe")


def console(width: int | None = None) -> Console:
    return _Console(highlight=False, width=width, soft_wrap=False, emoji=False)


def _verdict(result: CheckResult) -> Text:
    if result.verdict == ALLOWED:
        warned = sum(1 for outcome in result.rules if outcome.status == "warn")
        extra = f" (with {warned} warning{'s' if warned != 1 else ''})" if warned else ""
        return _text(f"ALLOWED on {iso(result.on)}{extra}", style="bold green")
    if result.verdict == NOT_YET:
        return _text(f"NOT YET: from {iso(result.earliest)}", style="bold yellow")
    return _text("BLOCKED: on no date, as proposed", style="bold red")


def short_source(source: str | None, limit: int = 90) -> str:
    """The head of a citation for the table (the full text is in JSON and `tpi rules show`)."""
    if not source:
        return "(no source given)"
    return source if len(source) <= limit else source[: limit - 1].rstrip() + "…"


def _rule_width(rules: list[Rule]) -> int:
    """The rule column: as wide as the longest id or group line ("payer medicare"), at most 26."""
    return min(max((max(len(rule.id), len(rule_group(rule.profiles, rule.severity))) for rule in rules),
                   default=10), 26)


def _shown(result: CheckResult) -> list[RuleOutcome]:
    # A skipped rule is listed in the table only when it has something to say about planned injections.
    return [outcome for outcome in result.rules if outcome.status != "skip" or outcome.note]


def _check_head(result: CheckResult) -> list[Text]:
    drugs = ", ".join(
        f"{line.drug.name} {line.amount.text()}"
        + (f" (= {mg_text(line.mg_ref, result.ref_scale)} mg {result.reference})"
           if line.mg_ref is not None and line.drug.name != result.reference and line.amount.kind == MASS else "")
        for line in result.drugs) or "dry needling, no drug"
    who = f"patient {result.patient_id}" if result.patient_id else "patient (no ID)"
    profiles = ", ".join(result.profiles) if result.profiles else "none (clinical rules only)"
    return [_verdict(result), _text(f"{result.proposal.label}, {result.category}, on {iso(result.on)}, {who}: {drugs}"),
            _text(f"payer profiles: {profiles}", style="dim")]


def _notes(outcome: RuleOutcome) -> list[str]:
    notes = []
    if outcome.status not in ("pass", "skip"):
        notes.append(f"passes from {iso(outcome.earliest)}" if outcome.earliest is not None else "passes on no date")
    if outcome.counted:
        notes.append("counted " + ", ".join(iso(day) or "" for day in outcome.counted))
    return notes


def _check_table(shown: list[RuleOutcome]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, expand=True)
    width = _rule_width([outcome.rule for outcome in shown])
    table.add_column("", no_wrap=True, min_width=4)
    table.add_column("rule", no_wrap=True, min_width=width, max_width=width, overflow="ellipsis")
    table.add_column("why", overflow="fold", ratio=1)
    for outcome in shown:
        rule = outcome.rule
        status = _text(outcome.status.upper(), style=_STATUS_STYLE[outcome.status])
        name = _text(rule.id)
        name.append(f"\n{rule_group(rule.profiles, rule.severity)}", style="dim")
        why = _text(outcome.message)
        notes = _notes(outcome)
        if notes:
            why.append("\n" + "; ".join(notes), style="bold" if outcome.status == "fail" else "")
        why.append(f"\nsource: {printable(short_source(rule.source))}", style="dim")
        table.add_row(status, name, why)
    return table


def _check_tail(result: CheckResult) -> list[Text]:
    parts = []
    skipped = [outcome for outcome in result.rules if outcome.status == "skip" and not outcome.note]
    if skipped:
        reasons: dict[str, list[str]] = {}
        for outcome in skipped:
            reasons.setdefault(outcome.message, []).append(outcome.rule.id)
        lines = "; ".join(f"{', '.join(ids)} ({reason})" for reason, ids in reasons.items())
        parts.append(_text(f"not applied: {lines}", style="dim"))
    parts.append(_text(f"full sources: tpi rules show. {DISCLAIMER}", style="dim"))
    return parts


def print_check(result: CheckResult, out: Console | None = None) -> None:
    """The verdict, a row per rule that applies, and the rules not applied. Over 1,000 rows (a
    generated rules file), the rows are plain lines, one a rule: rich took 6.7 s for 10,000."""
    target = out or console()
    shown = _shown(result)
    for part in _check_head(result):
        target.print(part)
    if not shown:
        target.print(_text("no rule applies to this proposal", style="bold"))
    elif len(shown) <= PLAIN_ROWS:
        target.print(_check_table(shown))
    else:
        rows = [[outcome.status.upper(), printable(outcome.rule.id),
                 rule_group(outcome.rule.profiles, outcome.rule.severity),
                 printable("; ".join([outcome.message, *_notes(outcome),
                                      f"source: {short_source(outcome.rule.source)}"]))]
                for outcome in shown]
        _plain_table(target, [("",), ("rule",), ("group",), ("why",)], rows, right=set())
    for part in _check_tail(result):
        target.print(part)


def print_next(result: ForecastResult, out: Console | None = None, *, today: int | None = None) -> None:
    """``today``: the date that reads as "today" (the machine's date; a forecast from another
    ``--on`` shows its dates)."""
    target = out or console()
    who = f"patient {result.patient_id}" if result.patient_id else "patient (no ID)"
    target.print(_text(f"Earliest dates from {iso(result.on)}, {who}", style="bold"))
    profiles = ", ".join(result.profiles) if result.profiles else "none (clinical rules only)"
    target.print(_text(f"payer profiles: {profiles}; proposals: dry needling; "
                      f"{result.defaults.get('anesthetic', '-')}; {result.defaults.get('steroid', '-')}", style="dim"))
    if not result.rows:
        target.print(_text("No site in this patient's history to forecast: give one with --site "
                           "('tpi sites' lists the sites of the rules).", style="yellow"))
        target.print(_text(DISCLAIMER, style="dim"))
        return
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("site", no_wrap=True)
    for name in ("dry", "anesthetic", "steroid"):
        table.add_column(name, overflow="fold")
    table.add_column("steroid\nmg left", justify="right", no_wrap=True)
    for row in result.rows:
        cells = []
        for category in ("dry", "anesthetic", "steroid"):
            day = row.earliest[category]
            held = row.held_by[category]
            if day == result.on:
                cells.append(_text("today" if day == today else iso(day) or "", style="green"))
            else:
                text = _text(iso(day) or "blocked", style="yellow" if day is not None else "red")
                if held:
                    text.append(f"\n{printable(held[0])}", style="dim")
                cells.append(text)
        left = mg_text(row.mg_remaining, result.ref_scale) if row.mg_remaining is not None else "no limit"
        label = row.site.name if row.side is None else f"{row.side} {row.site.name}"
        table.add_row(_text(label), *cells, _text(left))
    target.print(table)
    target.print(_text(f"steroid mg left: the largest {result.reference}-equivalent dose the dose rules still "
                      "allow on the date. " + DISCLAIMER, style="dim"))


def print_totals(result: TotalsResult, out: Console | None = None) -> None:
    target = out or console()
    window = f"in the {_in_words(result.window)} up to" if result.window is not None else "up to"
    target.print(_text(f"Corticosteroid totals {window} {iso(result.on)} (all time: up to {iso(result.on)}); "
                      f"mg-eq: mg of {result.reference.name}", style="bold"))
    ref = result.reference
    assert ref.equivalent_mg is not None
    rows = []
    for row in [*result.rows, *result.patients]:
        by_drug = ", ".join(f"{name} {mg_text(value, PG_PER_MG)}" for name, value in sorted(row.by_drug.items()))
        site = row.site if row.site is not None else "all sites"
        where = site if row.side is None else f"{site} ({row.side})"
        rows.append([printable(str(row.patient_id or "-")), printable(where), str(row.injections),
                     mg_text(row.ref, result.ref_scale), str(row.all_time_injections),
                     mg_text(row.all_time_ref, result.ref_scale), printable(by_drug or "-")])
    if len(rows) > PLAIN_ROWS:
        _plain_table(target, [("", "patient"), ("", "site"), ("", "inj"), ("", "mg-eq"), ("all", "inj"),
                              ("all", "mg-eq"), ("mg by drug", "(in window)")], rows, right={2, 3, 4, 5})
    else:
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        table.add_column("patient", overflow="fold")
        table.add_column("site", overflow="fold", min_width=9)
        table.add_column("inj", justify="right", no_wrap=True)
        table.add_column("mg-eq", justify="right", no_wrap=True)
        table.add_column("all\ninj", justify="right", no_wrap=True)
        table.add_column("all\nmg-eq", justify="right", no_wrap=True)
        table.add_column("mg by drug\n(in window)", overflow="fold", min_width=16)
        for cells in rows:
            style = "bold" if cells[1] == "all sites" else ""
            table.add_row(Text(cells[0]), Text(cells[1], style=style), *cells[2:6], Text(cells[6]))
        target.print(table)
    lines = [f"mg {ref.name}-eq = mg x {ref.equivalent_mg.decimal_text(3)} / the drug's equivalent mg:"]
    for drug in result.drugs:
        assert drug.equivalent_mg is not None
        factor = (ref.equivalent_mg / drug.equivalent_mg).decimal_text(4)
        lines.append(f"  {drug.name}: {drug.equivalent_mg.decimal_text(3)} mg = {ref.equivalent_mg.decimal_text(3)} mg "
                     f"{ref.name} (x {factor})")
    if _sides_add_up_to_more(result):
        lines.append("A bilateral injection, or one without a side, counts in full on the left and on the right: "
                     "a patient's site rows can add up to more than its total (all sites), which counts it once.")
    for line in lines:
        target.print(_text(line, style="dim"))
    target.print(_text(DISCLAIMER, style="dim"))


def _in_words(window: Duration) -> str:
    """An ISO duration in words, with the text as given (``6 months (P6M)``); other texts as given."""
    if window.text[:1] not in ("P", "p"):
        return window.text
    weeks, days = divmod(window.days, 7)
    words = [f"{number} {unit}{'' if number == 1 else 's'}"
             for number, unit in ((window.years, "year"), (window.months, "month"), (weeks, "week"),
                                  (days, "day")) if number]
    return f"{' '.join(words)} ({window.text})" if words else window.text


def _sides_add_up_to_more(result: TotalsResult) -> bool:
    """Whether some patient's site rows count more injections than its total (a bilateral or
    unspecified-side injection is in both the left and the right row)."""
    counted: dict[str | None, int] = {}
    for row in result.rows:
        counted[row.patient_id] = counted.get(row.patient_id, 0) + row.all_time_injections
    return any(counted.get(total.patient_id, 0) > total.all_time_injections for total in result.patients)


# Above this many rows a table is laid out here, not by rich (about 1 ms a row: a clinic's totals
# would take minutes): columns as wide as their widest cell, nothing folded.
PLAIN_ROWS = 1000


def _plain_table(target: Console, headers: list[tuple[str, ...]], rows: list[list[str]], right: set[int]) -> None:
    """A table like rich's SIMPLE_HEAD (header, a rule, the rows; two spaces between columns, no
    styles), written straight to the console's file. The cells are already printable."""
    widths = [max(cell_len(part) for part in header) for header in headers]
    for cells in rows:
        for index, cell in enumerate(cells):
            widths[index] = max(widths[index], cell_len(cell))  # terminal cells: a CJK character takes two

    def line(cells: list[str] | tuple[str, ...]) -> str:
        parts = []
        for index, (cell, width) in enumerate(zip(cells, widths, strict=True)):
            pad = " " * (width - cell_len(cell))
            parts.append(pad + cell if index in right else cell + pad)
        return "  ".join(parts).rstrip() + "\n"

    out = target.file
    height = max(len(header) for header in headers)
    for level in range(height):
        out.write(line([header[level - height + len(header)] if level - height + len(header) >= 0 else ""
                        for header in headers]))
    rule = "\u2500" if target.encoding.lower().startswith("utf") else "-"  # as rich draws it there
    out.write(rule * (sum(widths) + 2 * (len(widths) - 1)) + "\n")
    out.writelines(line(cells) for cells in rows)
    out.write("\n")


def print_sites(rules: Rules, out: Console | None = None) -> None:
    target = out or console()
    if len(rules.sites) > PLAIN_ROWS:  # e.g. a generated file of 200,000 sites: one line each
        rows = [[printable(site.name), printable(site.region), "left/right" if site.lateral else "none",
                 printable(", ".join(site.aliases)), printable(site.snomed or "-")] for site in rules.sites.values()]
        _plain_table(target, [("site",), ("region",), ("sides",), ("aliases",), ("SNOMED CT",)], rows, right=set())
        return
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for name in ("site", "region", "sides", "aliases", "SNOMED CT"):
        table.add_column(name, overflow="fold")
    for site in rules.sites.values():
        table.add_row(_text(site.name), _text(site.region), "left/right" if site.lateral else "none",
                      _text(", ".join(site.aliases)), _text(site.snomed or "-"))
    target.print(table)


def _rule_limit(rule: Rule) -> tuple[str, str | None]:
    """What a rule limits (kind, categories, scope, limit, grace), and when it is in force if bounded."""
    applies = "any" if len(rule.applies_to) == 4 else ", ".join(sorted(rule.applies_to))
    text = f"{rule.kind}: {applies}; {rule.scope}; {rule.limit_text()}"
    if rule.grace is not None and not rule.grace.is_zero():
        text += f"; grace {rule.grace}"
    if rule.effective is None and rule.until is None:
        return text, None
    return text, f"in force {iso(rule.effective) or '...'} to {iso(rule.until) or '...'}"


def print_rules(rules: Rules, profiles: frozenset[str], out: Console | None = None) -> None:
    target = out or console()
    chosen = ", ".join(sorted(profiles)) if profiles else "none"
    target.print(_text(f"{rules.path}: reference steroid {rules.reference_steroid.name}; profiles chosen: {chosen}",
                      style="bold"))
    if len(rules.rules) > PLAIN_ROWS:  # e.g. a generated file of 10,000 rules: one line each
        rows = []
        for rule in rules.rules:
            what, in_force = _rule_limit(rule)
            rows.append(["yes" if rule.active(profiles) else "no", printable(rule.id),
                         rule_group(rule.profiles, rule.severity),
                         printable(what + (f"; {in_force}" if in_force else "")),
                         printable(rule.source or "(no source given)")])
        _plain_table(target, [("active",), ("rule",), ("group",), ("applies, scope, limit",), ("source",)], rows,
                     right=set())
        return
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, expand=True)
    width = _rule_width(rules.rules)
    table.add_column("active", no_wrap=True)
    table.add_column("rule", no_wrap=True, min_width=width, max_width=width, overflow="ellipsis")
    table.add_column("applies, scope, limit", overflow="fold", ratio=3)
    table.add_column("source", overflow="fold", ratio=4)
    for rule in rules.rules:
        active = rule.active(profiles)
        name = _text(rule.id)
        name.append(f"\n{rule_group(rule.profiles, rule.severity)}", style="dim")
        what, in_force = _rule_limit(rule)
        limit = _text(what)
        if in_force:
            limit.append(f"\n{in_force}", style="dim")
        table.add_row(_text("yes" if active else "no", style="green" if active else "dim"), name, limit,
                      _text(rule.source or "(no source given)"))
    target.print(table)
