"""Every quorum threshold of the replica, in one place (Castro and Liskov, OSDI'99, section 4).

n = 3f + 1 replicas tolerate f Byzantine ones. Mutation testing patches these
functions, so the replica must use nothing else to count votes.
"""

from __future__ import annotations


def max_faulty(n: int) -> int:
    """f: the most Byzantine replicas that n replicas tolerate."""
    return (n - 1) // 3


def prepare_quorum(f: int) -> int:
    """Matching prepares from distinct backups that, with the pre-prepare, make an entry prepared (2f)."""
    return 2 * f


def commit_quorum(f: int) -> int:
    """Matching commits from distinct replicas (own included) that make an entry committed-local (2f+1)."""
    return 2 * f + 1


def checkpoint_quorum(f: int) -> int:
    """Matching checkpoint messages from distinct replicas that make a checkpoint stable (2f+1)."""
    return 2 * f + 1


def view_change_quorum(f: int) -> int:
    """View-changes from distinct replicas (new primary's own included) a new-view needs (2f+1)."""
    return 2 * f + 1


def view_change_join(f: int) -> int:
    """View-changes for higher views from distinct replicas that make a replica join (f+1)."""
    return f + 1


def reply_quorum(f: int) -> int:
    """Matching replies from distinct replicas a client needs to accept a result (f+1)."""
    return f + 1
