"""``evtsim explore``: the interleaving explorer on the command line.

    evtsim explore --list                                  # models, configurations, safeguards
    evtsim explore fifo                                     # every configuration of the model
    evtsim explore fifo --config two-senders --without cmpxchg --json ce.json
    evtsim explore fifo --config pending-tail --first       # a finding: Xen's own protocol breaks
    evtsim show ce.json                                     # the counterexample, step by step

Exit status 0 when every invariant holds, 1 when a counterexample was found (saved with
``--json``), 2 with one line on stderr for a usage error (unknown model, configuration or
safeguard, a bad bound or job count), 3 when the step bound cut a search short before any
counterexample turned up: nothing was found, but nothing was proved either.
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor

from . import races

HOLDS, FOUND, INCOMPLETE = 0, 1, 3


def add_parser(commands: argparse._SubParsersAction, usage_error: type[Exception]) -> None:
    """Register ``explore`` on the ``evtsim`` command line."""
    from .cli import jobs, max_jobs

    p = commands.add_parser("explore", help="explore every interleaving of a protocol (evtsim.races)",
                            description="Explore every interleaving of Xen's and Linux's event-channel protocol "
                                        "steps; exit 1 with a counterexample if an invariant breaks, "
                                        "3 if the step bound cut the search short.")
    p.add_argument("model", nargs="?", help=f"one of: {', '.join(races.MODELS)}")
    p.add_argument("--list", action="store_true", help="list models, configurations and safeguards")
    p.add_argument("--config", metavar="NAME", help="one configuration (default: all of the model's)")
    p.add_argument("--without", metavar="SAFEGUARD", nargs="+", action="extend", default=[],
                   help="remove these safeguards (see --list)")
    p.add_argument("--jobs", type=jobs, default=1, metavar="N",
                   help=f"worker processes, 1 to the {max_jobs()} CPUs evtsim may use here (default 1)")
    p.add_argument("--json", metavar="FILE", help="save the counterexample (an evtsim trace) to FILE")
    p.add_argument("--max-steps", type=int, default=races.DEFAULT_MAX_STEPS, metavar="N",
                   help=f"bound on the steps of one run (default {races.DEFAULT_MAX_STEPS})")
    p.add_argument("--bfs", action="store_true", help="shortest first instead of depth first")
    p.add_argument("--first", action="store_true", help="shortest first, stopping at the first violation "
                                                        "(for the big configurations kept as findings)")
    p.add_argument("--no-reduction", action="store_true", help="explore every interleaving (no partial-order "
                                                               "reduction): slower, same verdict")
    p.add_argument("-v", "--verbose", action="store_true", help="print each step's notes in the counterexample")
    p.set_defaults(command=lambda args: cmd_explore(args, usage_error))


def cmd_explore(args: argparse.Namespace, usage_error: type[Exception]) -> int:
    """Check the arguments, explore, print a line per configuration and the first counterexample."""
    if args.list:
        print_list()
        return HOLDS
    configs = _check(args, usage_error)
    from .cli import say

    found, incomplete = None, False
    for config in configs:
        result = _explore(args, config.name)
        say(result.summary())
        incomplete |= result.bound_hit
        if result.schedule is not None and found is None:
            found = result
    if found is None:
        if incomplete:
            say(f"the step bound ({args.max_steps}) cut the search short: raise --max-steps for a verdict")
        return INCOMPLETE if incomplete else HOLDS
    _show(found, args)
    return FOUND


def _check(args: argparse.Namespace, usage_error: type[Exception]) -> list[races.Config]:
    """Everything that can be wrong with the command line, before any work is done."""
    if args.model is None:
        raise usage_error("explore needs a MODEL (or --list)")
    try:
        configs = [races.find_config(args.model, args.config)] if args.config else races.configs_of(args.model)
        if not configs:
            races.find_config(args.model, None)
        races.check_without(args.model, args.without)
        races.check_bound(args.max_steps)
    except ValueError as e:
        raise usage_error(str(e)) from None
    if args.json is not None and not args.json.strip():
        raise usage_error("--json needs a file name")
    return configs


def _explore(args: argparse.Namespace, config: str) -> races.Result:
    progress = _progress if sys.stderr.isatty() else None
    kwargs = dict(por=not args.no_reduction, strategy="bfs" if args.bfs else "dfs", max_steps=args.max_steps,
                  progress=progress)
    if args.jobs == 1 or args.first:
        result = races.explore(args.model, config, args.without, first=args.first, **kwargs)
    else:
        kwargs.pop("strategy")
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            result = races.explore(args.model, config, args.without, executor=pool, **kwargs)
    if progress:
        sys.stderr.write("\r\033[K")
    return result


def _progress(states: int, transitions: int) -> None:
    sys.stderr.write(f"\r{states} states, {transitions} transitions")
    sys.stderr.flush()


def _show(result: races.Result, args: argparse.Namespace) -> None:
    """The counterexample, as a trace; saved whole to ``--json`` (or not at all)."""
    from .cli import load_tracefile, print_trace, say

    trace = races.counterexample(result)
    say("")
    say(f"counterexample: {result.violation}, {len(trace)} steps (the shortest found)")
    print_trace(trace, verbose=args.verbose)
    if args.json:
        load_tracefile().save(trace, args.json)  # an OSError names the file
        say(f"counterexample saved to {args.json}")


def print_list() -> None:
    """Models, their configurations and their safeguards."""
    for model in races.MODELS:
        print(f"model {model}")
        print("  configurations (--config NAME):")
        for c in races.configs_of(model):
            print(f"    {c.name:<14} {c.summary}")
        findings = [c for c in races.configs_of(model, findings=True) if c.name in races.FINDINGS]
        if findings:
            print("  findings (--config NAME --first; not run by default: the real protocol breaks there):")
            for c in findings:
                print(f"    {c.name:<14} {c.summary}")
        print("  safeguards (--without NAME):")
        for s in races.for_model(model):
            print(f"    {s.name:<19} {s.side}, {s.mirrors}")
            print(f"    {'':<19} keeps: {s.keeps}")
            print(f"    {'':<19} without it: {s.without}")
        print()
