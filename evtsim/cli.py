"""The ``evtsim`` command: run a named scenario and print its trace, OSTEP-homework style.

    evtsim run hibernation --xen 4.4 --fix disable-fifo --errno EPERM --guest-fallback enosys-only
    evtsim run hibernation --quiz          # predict the return codes and the outcome first
    evtsim run hibernation --fix disable-fifo --expect works   # exit 1 if the verdict differs
    evtsim matrix [--jobs N] [--csv]       # every alternative of the hibernation scenario
    evtsim list                            # scenarios and their options, Xen versions, fixes
    evtsim show FILE                       # a trace saved with ``run ... --json FILE``
    evtsim explore fifo --without cmpxchg  # every interleaving (cli_explore.py); exit 1: counterexample

Each scenario's options come from its parameter dataclass (``Scenario.options()``), so a new
scenario in ``SCENARIOS`` gets its command-line options for free. Errors are one line on
stderr starting ``evtsim: error:`` and exit status 2; ``run --expect`` that is not met exits 1.
Scenarios are deterministic (nothing in them is random), so there is no seed to choose.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import importlib.util
import os
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from types import ModuleType

from .scenarios import ERRNOS, FIXES, SCENARIOS, Scenario, get_scenario, run_scenario
from .sweep import Row, alternatives_matrix, sweep
from .text import printable
from .trace import VERDICTS, Record, Trace
from .versions import XEN_VERSIONS

PROG = "evtsim"
NOTE_INDENT = " " * 8
MATRIX_COLUMNS = ("old_xen", "xen", "fix", "errno", "guest_fallback")


class UsageError(Exception):
    """A bad command line: reported as one line, exit status 2."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but its errors become UsageError (one line, no usage dump)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``): 0 on success, 1 when ``run
    --expect`` is not met, 2 on bad input."""
    try:
        args = build_parser().parse_args(argv)
        status = args.command(args)
    except BrokenPipeError:  # `evtsim matrix | head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except SystemExit as e:  # --help
        return e.code if isinstance(e.code, int) else 0
    except (UsageError, ValueError, OSError) as e:
        print(f"{PROG}: error: {error_text(e)}", file=sys.stderr)
        return 2
    return status or 0


def error_text(e: BaseException) -> str:
    """One printable line: an OSError as ``FILE: reason``, anything else as its message."""
    if isinstance(e, OSError) and e.filename is not None:
        text = f"{e.filename}: {e.strerror or e}"
    else:
        text = str(e) or type(e).__name__
    return printable(" ".join(text.split()))


def build_parser() -> ArgumentParser:
    """The four sub-commands; ``run`` parses its scenario's options itself."""
    parser = ArgumentParser(prog=PROG, description="Explore Xen event channels, one scenario at a time.")
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")
    run = commands.add_parser("run", help="run a scenario and print its trace")
    run.add_argument("scenario", help=f"one of: {', '.join(SCENARIOS)}")
    run.add_argument("options", nargs=argparse.REMAINDER, help="the scenario's options (see `evtsim list`)")
    run.set_defaults(command=cmd_run)
    matrix = commands.add_parser("matrix", help="every alternative of the hibernation scenario")
    matrix.add_argument("--jobs", type=jobs, default=1, metavar="N",
                        help=f"worker processes, 1 to the {max_jobs()} CPUs evtsim may use here (default 1)")
    matrix.add_argument("--csv", action="store_true", help="CSV instead of a table")
    matrix.set_defaults(command=cmd_matrix)
    listing = commands.add_parser("list", help="scenarios, Xen versions and fixes")
    listing.set_defaults(command=cmd_list)
    show = commands.add_parser("show", help="print a trace saved with `run ... --json FILE`")
    show.add_argument("file")
    add_view_options(show)
    show.set_defaults(command=cmd_show)
    from .cli_explore import add_parser as add_explore
    add_explore(commands, UsageError)
    return parser


def add_view_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiz", action="store_true", help="hide return codes and the outcome")
    parser.add_argument("-v", "--verbose", action="store_true", help="also print each step's notes")


# run ------------------------------------------------------------------------------------------

def cmd_run(args: argparse.Namespace) -> int:
    """Parse the scenario's own options, run it, print (and maybe save) the trace; 1 if the
    verdict is not the one ``--expect`` names."""
    scenario = find_scenario(args.scenario)
    opts = scenario_parser(scenario).parse_args(args.options)
    if opts.json is not None and not opts.json:
        raise UsageError("--json needs a file name, not an empty string")
    tracefile = load_tracefile() if opts.json else None
    params = {name: getattr(opts, name) for name in scenario.options()}
    trace = run_scenario(scenario.name, **params)
    print_trace(trace, opts.quiz, opts.verbose)
    if tracefile is not None:
        tracefile.save(trace, opts.json)  # an OSError names the file
        say(f"trace saved to {opts.json}")
    if opts.expect is not None and trace.outcome.verdict != opts.expect:
        print(f"{PROG}: verdict {trace.outcome.verdict!r}, not the expected {opts.expect!r}", file=sys.stderr)
        return 1
    return 0


def find_scenario(name: str) -> Scenario:
    """The scenario ``name``; a ValueError (one line, exit 2) names the known ones and the closest."""
    return get_scenario(name)


def scenario_parser(scenario: Scenario) -> ArgumentParser:
    """``evtsim run NAME``'s options: the common ones, then one per scenario parameter
    (dashes for underscores), converted to the type of its default."""
    parser = ArgumentParser(prog=f"{PROG} run {scenario.name}", description=scenario.description)
    parser.add_argument("--json", metavar="FILE", help="also save the trace to FILE")
    parser.add_argument("--expect", type=verdict, metavar="VERDICT",
                        help=f"exit 1 unless the verdict is this one ({', '.join(map(dashed, VERDICTS))})")
    add_view_options(parser)
    for name, default in scenario.options().items():
        flag = "--" + name.replace("_", "-")
        kwargs = {"nargs": "?", "const": True} if isinstance(default, bool) else {}
        parser.add_argument(flag, dest=name, type=converter(default), default=default,
                            metavar=name.upper(), help=f"default: {default}", **kwargs)
    return parser


def converter(default: object) -> Callable[[str], object]:
    """How to read an option whose default is ``default``: bool, int, float, else str."""
    if isinstance(default, bool):
        return boolean
    if isinstance(default, (int, float)):
        return type(default)
    return str


def verdict(text: str) -> str:
    """A verdict as ``Outcome.verdict`` writes it, from ``events-lost`` or ``"events lost"``."""
    name = text.replace("-", " ")
    if name not in VERDICTS:
        raise argparse.ArgumentTypeError(f"unknown verdict {text!r}; choose from {', '.join(map(dashed, VERDICTS))}")
    return name


def dashed(name: str) -> str:
    return name.replace(" ", "-")


def boolean(text: str) -> bool:
    """``yes/no``, ``true/false``, ``on/off``, ``1/0``."""
    words = {"1": True, "yes": True, "true": True, "on": True, "0": False, "no": False, "false": False, "off": False}
    if text.lower() not in words:
        raise ValueError(text)
    return words[text.lower()]


def print_trace(trace: Trace, quiz: bool = False, verbose: bool = False) -> None:
    """The header and the parameters the run did not use, one line per step (its notes and
    events under it with ``verbose``), the outcome; every character a terminal would act on
    escaped (a loaded trace's strings come from a file)."""
    lines = trace.lines(quiz=quiz)
    steps = len(trace.records)
    say(lines[0])
    given = dict(trace.params)
    for name, why in trace.ignored:
        say(f"  {name}={given.get(name, '?')} is not used: {why}")
    for record, line in zip(trace.records, lines[1:1 + steps]):
        say(line)
        if verbose:
            for note in record.notes:
                say(NOTE_INDENT + note)
            if record.channels and not quiz:
                say(NOTE_INDENT + "events: " + channel_counts(record))
    for line in lines[1 + steps:]:
        say(line)
    if not quiz:
        for line in outcome_details(trace):
            say("  " + line)


def channel_counts(record: Record) -> str:
    """``guest@B: timer0 sent 2 delivered 2, xenstore sent 2 unbound 2``: this step's events."""
    guests: dict[str, list[str]] = {}
    for c in record.channels:
        figures = " ".join(f"{what} {n}" for what, n in (("sent", c.sent), ("unbound", c.unbound),
                                                          ("delivered", c.delivered)) if n)
        guests.setdefault(c.guest, []).append(f"{c.channel} {figures}")
    return "; ".join(f"{guest}: {', '.join(counts)}" for guest, counts in guests.items())


def say(line: str) -> None:
    """Print one line of output, escaped (evtsim.text.printable)."""
    print(printable(line))


def outcome_details(trace: Trace) -> list[str]:
    """Where it went wrong: the step numbers of the first loss, stray write and crash, and the
    steps a crash left unplayed."""
    o = trace.outcome
    out = []
    if o.first_loss_step is not None:
        out.append(f"first events lost by step [{o.first_loss_step}]: {o.lost} of {o.sent}")
    if o.first_corruption_step is not None:
        frames = ", ".join(hex(gfn) for gfn in o.corrupted_frames)
        out.append(f"first Xen write into a handed-over frame at step [{o.first_corruption_step}]; frames {frames}")
    if o.crash_step is not None:
        out.append(f"guest crashed at step [{o.crash_step}]")
    if trace.not_run:
        out.append(f"the story ends there; not run: {', '.join(trace.not_run)}")
    return out


def load_tracefile() -> ModuleType:
    """``evtsim.tracefile``, imported only by the commands that save or load traces."""
    name = f"{__package__}.tracefile"
    try:
        tracefile = importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name != name:
            raise
        raise UsageError("saving and loading traces needs evtsim.tracefile, which is not installed") from e
    return tracefile


# matrix ---------------------------------------------------------------------------------------

def max_jobs() -> int:
    """The most worker processes ``matrix`` starts: one per CPU this process may run on (more
    would only wait for a CPU, and each costs memory)."""
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    return max(1, len(cpus))


def jobs(text: str) -> int:
    """``--jobs``: a whole number from 1 to ``max_jobs()``, refused before any work starts."""
    n = int(text)  # a ValueError becomes argparse's one-line "invalid jobs value"
    if not 1 <= n <= max_jobs():
        shown = text if len(text) <= 20 else f"a number of {len(text)} digits"
        raise argparse.ArgumentTypeError(f"must be 1 to {max_jobs()} (the CPUs evtsim may use here), not {shown}")
    return n


def cmd_matrix(args: argparse.Namespace) -> None:
    """Every hibernation alternative: a table (or CSV), one row per run."""
    rows = run_matrix(args.jobs)
    if args.csv:
        write_csv(rows)
    else:
        print_table(rows)


def run_matrix(jobs: int) -> list[Row]:
    runs = alternatives_matrix()
    # a bar only for a person watching, and only with tqdm (evtsim[notebooks]); the core needs neither
    progress = sys.stderr.isatty() and importlib.util.find_spec("tqdm") is not None
    if jobs == 1:
        return sweep("hibernation", runs, progress=progress)
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=jobs) as pool:
        return sweep("hibernation", runs, executor=pool, progress=progress)


def print_table(rows: list[Row]) -> None:
    """Aligned columns: #, the parameters, the verdict, delivered/sent; then the tally."""
    header = ("#", *MATRIX_COLUMNS, "verdict", "delivered/sent")
    body = [(str(i), *(str(row[c]) for c in MATRIX_COLUMNS), row.verdict, f"{row.delivered}/{row.sent}")
            for i, row in enumerate(rows)]
    widths = [max(len(cells[i]) for cells in (header, *body)) for i in range(len(header))]
    for cells in (header, *body):
        print("  ".join(cell.ljust(w) for cell, w in zip(cells, widths)).rstrip())
    tally = Counter(row.verdict for row in rows)
    print(f"{len(rows)} runs: " + ", ".join(f"{n} {verdict}" for verdict, n in tally.most_common()))


def write_csv(rows: list[Row]) -> None:
    """Every parameter and outcome field; a tuple becomes ``a;b``, None an empty cell."""
    records = [{k: v for k, v in row.as_dict().items() if k != "scenario"} for row in rows]
    writer = csv.DictWriter(sys.stdout, fieldnames=list(records[0]), lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({k: ";".join(v) if isinstance(v, tuple) else ("" if v is None else v)
                         for k, v in record.items()})


# list and show --------------------------------------------------------------------------------

def cmd_list(args: argparse.Namespace) -> None:
    """What there is to run: scenarios with their options, Xen versions, fixes, errnos."""
    print("scenarios (evtsim run NAME [--option VALUE ...]):")
    for s in SCENARIOS.values():
        print(f"  {s.name:<18} {s.description}")
        print("      " + "  ".join(f"--{k.replace('_', '-')} {v}" for k, v in s.options().items()))
    print("\nXen versions (--xen, --old-xen; a release such as 4.6 maps to its row):")
    for v in XEN_VERSIONS.values():
        print(f"  {v.name:<10} {v.description}")
    print("\nfixes (evtsim run hibernation --fix NAME):")
    for name, text in FIXES.items():
        print(f"  {name:<14} {text}")
    print(f"\nerrnos (--errno, for disable-fifo and xsm): {' '.join(ERRNOS)}")


def cmd_show(args: argparse.Namespace) -> None:
    """Load a saved trace (validated by tracefile.load) and print it."""
    tracefile = load_tracefile()
    try:
        trace = tracefile.load(args.file)
    except getattr(tracefile, "TraceFileError", ValueError) as e:
        raise UsageError(f"{args.file}: {e}") from e
    print_trace(trace, args.quiz, args.verbose)
