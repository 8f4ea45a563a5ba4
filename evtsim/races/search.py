"""Exhaustive search of a model's interleavings: state hashing, persistent sets, sleep sets.

Every state is hashed (a tuple of ints) and expanded once. With partial-order reduction on,
a state is expanded only through a *persistent set* of actors: one actor whose next step
nothing else can disturb before it runs, grown by the actors whose futures could (Godefroid,
"Partial-Order Methods for the Verification of Concurrent Systems", ch. 4). The futures come
from each step's declared footprint, refined by what cannot happen while the set is held
back: an actor cannot pass a lock a held-back actor holds, nor take an upcall only held-back
actors could raise. *Sleep sets* (ch. 5, with the state-caching rule of 5.3) then skip the
transitions whose order against an explored sibling does not matter. Persistent sets keep
every quiescent state and, the state graphs being acyclic, a run of every Mazurkiewicz trace,
so the quiescent invariants and the step assertions are checked exactly; the structural
invariants are checked at every state the search visits (docs/races.md discusses this, and
the tests compare the reduced search with the full one on every configuration).

The search never reads a clock and never prints: ``progress(states, transitions)`` is called
every ``PROGRESS_EVERY`` new states.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .configs import rest_violations
from .machine import DONE_PC, GateKind, Model, State

Progress = Callable[[int, int], None]
PROGRESS_EVERY = 1 << 14
DEFAULT_MAX_STEPS = 400


Footprint = tuple[int, int, int]  # location bits read, written, set (to a fixed value)


def _conflict(x: Footprint, y: Footprint) -> bool:
    """Two footprints conflict when one changes what the other reads or writes; two steps
    that only set the same location to its fixed value commute."""
    r1, w1, s1 = x
    r2, w2, s2 = y
    return bool(w1 & (r2 | w2 | s2) or s1 & (r2 | w2) or r1 & (w2 | s2))


class Locations:
    """Bit numbers for the (slot, field) locations a model's steps touch."""

    def __init__(self, model: Model) -> None:
        self.layout = model.layout
        self.index: dict[tuple[int, str | None], int] = {}
        skip = {model.viol}  # the violation bits order nothing: a flagged state is not expanded
        for slot in range(model.memory):
            if slot not in skip:
                for loc in self.layout.locations(slot):
                    self.index[loc] = len(self.index)

    def mask(self, locs: Iterable) -> int:
        bits = 0
        for loc in locs:
            for pair in self.layout.locations(loc):
                if pair in self.index:
                    bits |= 1 << self.index[pair]
        return bits

    def footprint(self, step) -> Footprint:
        return self.mask(step.reads), self.mask(step.writes), self.mask(step.sets)


class Reduction:
    """What the partial-order reduction knows about each actor's code, computed once."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.locs = Locations(model)
        self.bases = [a.base for a in model.actors]
        self.holder = {a.base: i for i, a in enumerate(model.actors)}  # a lock holds its holder's base
        self.fp: list[list[Footprint]] = []
        self.succ: list[list[tuple[int, ...]]] = []
        self.gated: list[list[int]] = []
        for actor in model.actors:
            steps, pcs = actor.program.steps, actor.program.pcs
            self.fp.append([self.locs.footprint(st) for st in steps])
            self.succ.append([tuple(pcs[n] for n in st.nexts if pcs[n] != DONE_PC) for st in steps])
            self.gated.append([pc for pc, st in enumerate(steps) if st.gate])
        self.exact = [[st.exact for st in a.program.steps] for a in model.actors]
        for a in model.actors:  # the persistent sets are remembered by what next steps touch
            for st in a.program.steps:
                if st.gate and st.gate.kind is GateKind.LOCK and st.exact is None:
                    raise ValueError(f"{a.name}:{st.label} waits for a lock but does not say which (exact)")
        self._exact: dict[tuple, Footprint] = {}
        self.fut = [[self._reach(i, pc, 0) for pc in range(len(a.program.steps))] for i, a in enumerate(model.actors)]
        self._memo: dict[tuple[int, int, int], Footprint] = {}
        # A persistent set depends only on the program counters, who is enabled, who holds which
        # lock and the slots that gates judged ahead read: remember it by those.
        gates = [st.gate for a in model.actors for st in a.program.steps if st.gate]
        self.key_slots = sorted({slot for g in gates if g.kind is GateKind.LOCK or g.ahead for slot in g.slots})
        self._chosen: dict[tuple, tuple[list[int], dict[int, Footprint]]] = {}
        self.key_index = (*self.bases, *self.key_slots)

    def _reach(self, i: int, pc: int, closed: int) -> Footprint:
        """Footprint of every step reachable from ``pc``, not going past the gates in ``closed``."""
        r = w = z = 0
        seen, todo = {pc}, [pc]
        while todo:
            at = todo.pop()
            fr, fw, fz = self.fp[i][at]
            r, w, z = r | fr, w | fw, z | fz
            if closed >> at & 1:
                continue
            for nxt in self.succ[i][at]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return r, w, z

    def future(self, i: int, pc: int, closed: int) -> Footprint:
        if not closed:
            return self.fut[i][pc]
        key = (i, pc, closed)
        got = self._memo.get(key)
        if got is None:
            got = self._memo[key] = self._reach(i, pc, closed)
        return got

    def closed_gates(self, s: State, b: int, frozen: int, waits: bool = True) -> int:
        """Gates actor ``b`` cannot pass while the ``frozen`` actors stand still (bits by pc):
        a lock a frozen actor holds (at ``b``'s next step, the lock it wants; further on, every
        lock it might want); an upcall or a bit only frozen actors could change."""
        closed, base = 0, self.bases[b]
        cur = s[base]
        steps = self.model.actors[b].program.steps
        for pc in self.gated[b]:
            gate = steps[pc].gate
            if gate.kind is GateKind.LOCK:
                locks = (gate.at(s, base),) if pc == cur else gate.slots
                if all(s[lock] and frozen >> self.holder[s[lock]] & 1 for lock in locks):
                    closed |= 1 << pc
            elif waits and (pc == cur or gate.ahead) and not gate.open(s, base) \
                    and not self._writers(s, gate.slots, frozen, b):
                closed |= 1 << pc
        return closed

    def _writers(self, s: State, slots: frozenset[int], frozen: int, b: int) -> bool:
        """Whether an actor neither frozen nor ``b`` may write one of ``slots`` before the frozen
        actors move (its way there may be barred by a lock a frozen actor holds)."""
        want = self.locs.mask(slots)
        for c, base in enumerate(self.bases):
            if frozen >> c & 1 or c == b or s[base] == DONE_PC:
                continue
            fut = self.fut[c][s[base]]
            if (fut[1] | fut[2]) & want:
                fut = self.future(c, s[base], self.closed_gates(s, c, frozen, waits=False))
                if (fut[1] | fut[2]) & want:
                    return True
        return False

    def choose(self, s: State, enabled: list[int], live: list[int]) -> tuple[list[int], dict[int, Footprint]]:
        """A persistent subset of ``enabled`` (the smallest this method finds, first on ties), and
        the footprint of each live actor's next step.

        Both depend only on the program counters, what the next steps touch, who is enabled,
        who holds which lock and the slots gates judged ahead read: they are remembered by those.
        """
        bases, exact = self.bases, self.exact
        touches = []
        for i in live:
            base = bases[i]
            ex = exact[i][s[base]]
            touches.append(None if ex is None else ex(s, base))
        key = (tuple(map(s.__getitem__, self.key_index)), tuple(touches), tuple(enabled))
        hit = self._chosen.get(key)
        if hit is None:
            nxt = {i: self._footprint(s, i, t) for i, t in zip(live, touches)}
            hit = self._chosen[key] = (self._persistent(s, enabled, live, nxt), nxt)
        return hit

    def _footprint(self, s: State, i: int, touch: object) -> Footprint:
        if touch is None:
            return self.fp[i][s[self.bases[i]]]
        fp = self._exact.get(touch)
        if fp is None:
            fp = self._exact[touch] = (self.locs.mask(touch[0]), self.locs.mask(touch[1]), self.locs.mask(touch[2]))
        return fp

    def _persistent(self, s: State, enabled: list[int], live: list[int], nxt: dict[int, Footprint]) -> list[int]:
        if len(enabled) <= 1:
            return enabled
        futs = [self.fut[b][s[self.bases[b]]] for b in live]
        for a in enabled:  # fast path: nothing any other actor may ever do touches a's step
            r = w = z = 0
            for b, (fr, fw, fz) in zip(live, futs):
                if b != a:
                    r, w, z = r | fr, w | fw, z | fz
            if not _conflict(nxt[a], (r, w, z)):  # conflicting with a union is conflicting with one of it
                return [a]
        return self._smallest(s, enabled, live, nxt)

    def _smallest(self, s: State, enabled: list[int], live: list[int], nxt: dict[int, Footprint]) -> list[int]:
        best = enabled
        for a in enabled:
            chosen = self._closure(s, a, live, enabled, nxt)
            if len(chosen) < len(best):
                best = chosen
                if len(best) == 1:
                    break
        return best

    def _closure(self, s: State, a: int, live: list[int], enabled: list[int],
                 nxt: dict[int, Footprint]) -> list[int]:
        """Grow {a} by every actor whose future (as far as it can get) conflicts with the set's steps."""
        frozen = 1 << a
        tr, tw, tz = nxt[a]
        changed = True
        while changed:
            changed = False
            for b in live:
                if frozen >> b & 1:
                    continue
                if _conflict(self.future(b, s[self.bases[b]], self.closed_gates(s, b, frozen)), (tr, tw, tz)):
                    frozen |= 1 << b
                    br, bw, bz = nxt[b]
                    tr, tw, tz = tr | br, tw | bw, tz | bz
                    changed = True
        return [i for i in enabled if frozen >> i & 1]




@dataclass
class Stats:
    """What one search saw. ``found`` maps a violation bit to the shortest schedule found."""

    states: set[int] = field(default_factory=set)  # hashes, for merging parallel runs
    terminals: set[int] = field(default_factory=set)
    transitions: int = 0
    max_depth: int = 0
    bound_hit: bool = False
    violations: int = 0
    found: dict[int, tuple[int, ...]] = field(default_factory=dict)

    def merge(self, other: Stats) -> None:
        self.states |= other.states
        self.terminals |= other.terminals
        self.transitions += other.transitions
        self.max_depth = max(self.max_depth, other.max_depth)
        self.bound_hit |= other.bound_hit
        self.violations |= other.violations
        for bit, schedule in other.found.items():
            mine = self.found.get(bit)
            if mine is None or (len(schedule), schedule) < (len(mine), mine):
                self.found[bit] = schedule


class Search:
    """Depth-first (or breadth-first) search of one model from given roots."""

    def __init__(self, model: Model, *, por: bool = True, sleep: bool = True, max_steps: int = DEFAULT_MAX_STEPS,
                 progress: Progress | None = None) -> None:
        self.model, self.por, self.sleep, self.max_steps = model, por, sleep and por, max_steps
        self.red = Reduction(model)
        self.actors = model.actors
        self.runs = [[st.run for st in a.program.steps] for a in model.actors]
        self.opens = [(i, a.base, [st.gate.open if st.gate else None for st in a.program.steps])
                      for i, a in enumerate(model.actors)]
        self.pcs = [a.program.pcs for a in model.actors]
        self.progress = progress
        self.stats = Stats()
        self.visited: dict[State, int] = {}

    # --- one step ------------------------------------------------------------------------------

    def successor(self, s: State, i: int) -> State:
        base = self.red.bases[i]
        m = list(s)
        label = self.runs[i][s[base]](m, base)
        m[base] = self.pcs[i][label]
        return tuple(m)

    def enabled(self, s: State) -> tuple[list[int], list[int]]:
        """(enabled actors, actors not done)."""
        enabled, live = [], []
        for i, base, opens in self.opens:
            pc = s[base]
            if pc == DONE_PC:
                continue
            live.append(i)
            gate = opens[pc]
            if gate is None or gate(s, base):
                enabled.append(i)
        return enabled, live

    def choose(self, s: State) -> tuple[list[int], list[int], dict[int, Footprint]]:
        """(the actors to expand ``s`` through, all enabled actors, next-step footprints)."""
        enabled, live = self.enabled(s)
        if not self.por or not enabled:
            return enabled, enabled, {}
        chosen, nxt = self.red.choose(s, enabled, live)
        return chosen, enabled, nxt

    def _bad(self, s: State) -> int:
        return s[self.model.viol] | self.model.check_state(s)

    def note(self, s: State, bits: int, path: list[int]) -> None:
        self.stats.violations |= bits
        for bit in _bits(bits):
            mine = self.stats.found.get(bit)
            if mine is None or len(path) < len(mine):
                self.stats.found[bit] = tuple(path)

    def _new_state(self, count: int) -> None:
        if self.progress and count % PROGRESS_EVERY == 0:
            self.progress(count, self.stats.transitions)

    # --- depth first ---------------------------------------------------------------------------

    def dfs(self, roots: Iterable[tuple]) -> Stats:
        """Explore everything reachable from each root: (state, the schedule that led there),
        optionally with the sleep set it was reached with."""
        for state, prefix, *sleep in roots:
            self._dfs_from(state, list(prefix), sleep[0] if sleep else 0)
        self.stats.states = {hash(s) for s in self.visited}
        return self.stats

    def child_sleep(self, sleep: int, t: int, fps: dict[int, Footprint]) -> int:
        """The sleep set after taking ``t``: what slept and commutes with ``t`` sleeps on."""
        child = 0
        for z in _bits_of(sleep):
            if not _conflict(fps[z], fps[t]):
                child |= 1 << z
        return child

    def _dfs_from(self, root: State, path: list[int], sleep: int = 0) -> None:
        stack: list[list] = []  # frames: [state, todo, sleep, successors, footprints]
        on_stack: set[State] = set()
        frame = self._open(root, sleep, path, on_stack)
        if frame is None:
            return
        stack.append(frame)
        on_stack.add(root)
        while stack:
            top = stack[-1]
            if not top[1]:
                stack.pop()
                on_stack.discard(top[0])
                if stack:
                    path.pop()
                continue
            t = top[1].pop(0)
            sleep, nxt, fps = top[2], top[3][t], top[4]
            child_sleep = 0
            if self.sleep:
                child_sleep = self.child_sleep(sleep, t, fps)
                top[2] = sleep | 1 << t
            path.append(t)
            child = self._open(nxt, child_sleep, path, on_stack)
            if child is None:
                path.pop()
            else:
                stack.append(child)
                on_stack.add(nxt)

    def _open(self, s: State, sleep: int, path: list[int], on_stack: set[State]) -> list | None:
        """Visit ``s`` (reached by ``path`` with ``sleep``): a frame to explore, or None."""
        stored = self.visited.get(s)
        if stored is not None:
            return self._reopen(s, sleep, stored)
        depth = len(path)
        self.stats.max_depth = max(self.stats.max_depth, depth)
        self._new_state(len(self.visited) + 1)
        bad = self._bad(s)
        if bad:
            self.visited[s] = 0
            self.note(s, bad, path)
            return None
        chosen, enabled, fps = self.choose(s)
        if not enabled:
            self.visited[s] = 0
            self.stats.terminals.add(hash(s))
            rest = rest_violations(self.model, s)
            if rest:
                self.note(s, rest, path)
            return None
        if depth >= self.max_steps:
            self.visited[s] = 0
            self.stats.bound_hit = True
            return None
        self.visited[s] = sleep
        todo = [a for a in chosen if not sleep >> a & 1]
        succ = {a: self.successor(s, a) for a in todo}
        if len(chosen) < len(enabled) and any(n in on_stack for n in succ.values()):
            chosen = enabled  # the cycle proviso: never postpone an actor round a cycle
            todo = [a for a in chosen if not sleep >> a & 1]
            succ.update({a: self.successor(s, a) for a in todo if a not in succ})
        self.stats.transitions += len(todo)
        return [s, todo, sleep, succ, fps]

    def _reopen(self, s: State, sleep: int, stored: int) -> list | None:
        """A state seen before: explore only what slept then and is awake now (Godefroid 5.3)."""
        wake = stored & ~sleep
        if not wake:
            return None
        self.visited[s] = stored & sleep
        chosen, _, fps = self.choose(s)
        todo = [a for a in chosen if wake >> a & 1]
        if not todo:
            return None
        self.stats.transitions += len(todo)
        return [s, todo, stored & sleep, {a: self.successor(s, a) for a in todo}, fps]

    # --- breadth first -------------------------------------------------------------------------

    def bfs(self, root: State, stop: int = 0) -> Stats:
        """Shortest first from ``root``; with ``stop`` (violation bits), end at the first such violation."""
        parent: dict[State, tuple[State, int] | None] = {root: None}
        queue = deque([(root, 0)])
        while queue:
            s, depth = queue.popleft()
            self.stats.max_depth = max(self.stats.max_depth, depth)
            bad = self._bad(s)
            if bad:
                self.note(s, bad, _path(parent, s))
                if bad & stop:
                    break
                continue
            chosen, enabled, _ = self.choose(s)
            if not enabled:
                self.stats.terminals.add(hash(s))
                rest = rest_violations(self.model, s)
                if rest:
                    self.note(s, rest, _path(parent, s))
                    if rest & stop:
                        break
                continue
            if depth >= self.max_steps:
                self.stats.bound_hit = True
                continue
            for a in chosen:
                nxt = self.successor(s, a)
                self.stats.transitions += 1
                if nxt not in parent:
                    parent[nxt] = (s, a)
                    self._new_state(len(parent))
                    queue.append((nxt, depth + 1))
        self.stats.states = {hash(s) for s in parent}
        return self.stats


def _path(parent: dict[State, tuple[State, int] | None], s: State) -> list[int]:
    out = []
    link = parent[s]
    while link is not None:
        s, a = link
        out.append(a)
        link = parent[s]
    return out[::-1]


def _bits(bits: int) -> list[int]:
    return [1 << i for i in range(bits.bit_length()) if bits >> i & 1]


def _bits_of(mask: int) -> list[int]:
    return [i for i in range(mask.bit_length()) if mask >> i & 1]
