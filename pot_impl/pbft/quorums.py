"""Every quorum threshold of the replica, in one place (Castro and Liskov, OSDI'99, section 4).

n >= 3f + 1 replicas tolerate f Byzantine ones. Certificates need n - f
distinct replicas: at n = 3f + 1 that is the paper's 2f + 1, and for larger n
it keeps two certificates intersecting in at least f + 1 replicas (one honest),
which a literal 2f + 1 would not (out of n = 3f + 2 it intersects in only f).
Mutation testing patches these functions, so the replica counts votes
against nothing else.
"""

from __future__ import annotations


def max_faulty(n: int) -> int:
    """f: the most Byzantine replicas that n replicas tolerate."""
    return (n - 1) // 3


def certificate_quorum(n: int, f: int) -> int:
    """Distinct replicas in a commit, checkpoint or view-change certificate (2f+1 at n = 3f+1)."""
    return n - f


def prepare_quorum(n: int, f: int) -> int:
    """Matching prepares from distinct backups that, with the pre-prepare, make an entry prepared (2f)."""
    return certificate_quorum(n, f) - 1


def commit_quorum(n: int, f: int) -> int:
    """Matching commits from distinct replicas (own included) that make an entry committed-local (2f+1)."""
    return certificate_quorum(n, f)


def checkpoint_quorum(n: int, f: int) -> int:
    """Matching checkpoint messages from distinct replicas that make a checkpoint stable (2f+1)."""
    return certificate_quorum(n, f)


def view_change_quorum(n: int, f: int) -> int:
    """View-changes from distinct replicas (new primary's own included) a new-view needs (2f+1)."""
    return certificate_quorum(n, f)


def view_change_join(n: int, f: int) -> int:
    """View-changes for higher views from distinct replicas that make a replica join (f+1): at least
    one of them is honest, so the cluster really is moving on."""
    return f + 1


def reply_quorum(n: int, f: int) -> int:
    """Matching replies from distinct replicas a client needs to accept a result (f+1)."""
    return f + 1
