"""PBFT's properties: safety invariants (C&L 4.5.1, 4.1, 4.3), liveness under partial synchrony
(C&L 4.5.2), and the fairness the liveness properties assume.

Each property is a predicate of a ``Pbft`` (who is honest, the requests) and a state.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from functools import partial
from itertools import pairwise

from model_checker.model import Fairness, Property, eventually, leads_to, weak_fairness
from spec.pbft.protocol import Pbft
from spec.pbft.state import NULL, Logs, Ops, State
from spec.quorum import reply_quorum, view_change_join

# --------------------------------------------------------------------------- invariants


def agreement(p: Pbft, s: State) -> bool:
    """Agreement (C&L 4.5.1 safety): no two honest replicas are committed-local for
    different requests at one sequence number, in the same or different views."""
    decided: dict[int, int] = {}
    return all(decided.setdefault(n, d) == d for n, d in s.decided)


def executed_prefix(p: Pbft, logs: Logs) -> bool:
    """ExecutedPrefix (C&L 4: a replicated state machine; every honest replica executes the same
    sequence): of any two honest executed logs, one is a prefix of the other."""
    ordered = sorted(logs, key=len)
    return all(shorter == longer[: len(shorter)] for shorter, longer in pairwise(ordered))


def only_sent_requests_executed(p: Pbft, logs: Logs) -> bool:
    """OnlySentRequestsExecuted (C&L 4.1: requests are signed by their clients): honest replicas
    execute only requests some client sent, or null requests."""
    return all(op == NULL or p.client_sent(op) for ops in logs for op in ops)


def executed_at_most_once(p: Pbft, logs: Logs) -> bool:
    """ExecutedAtMostOnce (C&L 4.1: timestamps give exactly-once semantics): no honest replica
    executes a request twice."""
    for ops in logs:
        requests = [op for op in ops if op != NULL]
        if len(requests) != len(set(requests)):
            return False
    return True


def checkpoint_agreement(p: Pbft, logs: Logs) -> bool:
    """CheckpointAgreement (C&L 4.3): at most one state is certified stable per sequence number,
    and it is the executed prefix of every honest replica that got that far."""
    certified: dict[int, Ops] = {}
    for n, st in p.certified_checkpoints(logs):
        if certified.setdefault(n, st) != st:
            return False
    return all(ops[:n] == st for n, st in certified.items() for ops in logs if len(ops) >= n)


def client_accepts_only_correct_results(p: Pbft, logs: Logs) -> bool:
    """ClientAcceptsOnlyCorrectResults (C&L 4.1: the client waits for f + 1 matching replies): any
    result that reply_quorum(f) replicas (Byzantine ones replying anything) can vouch for is
    the result the request has in the longest honest executed log."""
    longest = max(logs, key=len)
    for request in p.requests:
        if request not in longest:
            continue
        correct = p.app.result(longest, request)
        support: dict[Hashable, int] = {}
        for ops in logs:
            if request in ops:
                answer = p.app.result(ops, request)
                support[answer] = support.get(answer, 0) + 1
        for answer, count in support.items():
            if count + len(p.byzantine) >= reply_quorum(p.config.faulty) and answer != correct:
                return False
    return True


def on_logs(p: Pbft, holds: Callable[[Pbft, Logs], bool]) -> Callable[[State], bool]:
    """An invariant of the honest executed logs as a state predicate, memoised by the logs: states
    differ mostly in messages, and few distinct tuples of logs recur (hundreds on ``pbft``)."""
    memo: dict[Logs, bool] = {}

    def on(s: State) -> bool:
        logs = p.honest_logs(s)
        found = memo.get(logs)
        if found is None:
            found = memo[logs] = holds(p, logs)
        return found

    return on


def on_every_honest_log(holds: Callable[[Ops], bool]) -> Callable[[Pbft, Logs], bool]:
    """An application invariant (a predicate on one executed log) on every honest replica's log."""
    return lambda p, logs: all(holds(ops) for ops in set(logs))


def invariants(p: Pbft) -> dict[str, Callable[[State], bool]]:
    """PBFT's invariants, then the application's on every honest log."""
    of_logs: dict[str, Callable[[Pbft, Logs], bool]] = {
        "ExecutedPrefix": executed_prefix,
        "OnlySentRequestsExecuted": only_sent_requests_executed,
        "ExecutedAtMostOnce": executed_at_most_once,
        "CheckpointAgreement": checkpoint_agreement,
        "ClientAcceptsOnlyCorrectResults": client_accepts_only_correct_results,
        **{name: on_every_honest_log(holds) for name, holds in p.app.invariants.items()},
    }
    memoised = {name: on_logs(p, holds) for name, holds in of_logs.items()}
    return {"Agreement": partial(agreement, p), **memoised}


# --------------------------------------------------------------------------- liveness


def all_executed_everywhere(p: Pbft, s: State) -> bool:
    return all(d in s.replicas[i].executed for i in p.honest for d in p.requests)


def replies_available(p: Pbft, s: State) -> bool:
    needed = reply_quorum(p.config.faulty)
    return all(sum(d in s.replicas[i].executed for i in p.honest) >= needed for d in p.requests)


def view_change_started(p: Pbft, s: State) -> bool:
    changing = sum(1 for i in p.honest if s.replicas[i].changing)
    return changing >= view_change_join(p.config.faulty)


def no_view_change(p: Pbft, s: State) -> bool:
    return not any(s.replicas[i].changing for i in p.honest)


def properties(p: Pbft) -> tuple[Property[State], ...]:
    """PBFT's liveness properties (C&L 4.5.2 under partial synchrony), in liveness models."""
    if not p.config.liveness:
        return ()
    return (
        eventually(
            "ClientReceivesReplies",
            partial(replies_available, p),
            "every client eventually holds reply_quorum(f) matching replies from honest replicas",
        ),
        eventually(
            "RequestsExecutedByAll",
            partial(all_executed_everywhere, p),
            "every client request is eventually executed by every honest replica (needs CatchUp)",
        ),
        leads_to(
            "ViewChangeCompletes",
            partial(view_change_started, p),
            partial(no_view_change, p),
            "a view change that view_change_join(f) honest replicas started eventually completes",
        ),
    )


def fairness(p: Pbft) -> tuple[Fairness, ...]:
    """Liveness models: every honest replica eventually takes each step it can take on honest
    messages alone (``Pbft.honest_actions``), its timer fires when it may; GST eventually comes."""
    if not p.config.liveness:
        return ()
    fair = [a.name for a in p.honest_actions]
    fair.insert(fair.index("JoinViewChange"), "StartViewChange")
    return (*(weak_fairness(name, per_instance=True) for name in fair), weak_fairness("GST"))
