"""django-q2's Redis broker with tasks due later, for several clusters on several machines (`Q_BROKER=redis`).

A triggered push is due `SYNC_DEBOUNCE_SECONDS` after the save, so a burst of edits costs one push. On the ORM
broker the queued row simply carries its due time (zoho_sync.queueing). django-q2's Redis broker has no such
thing: its only way to run a task later is a one-off Schedule, which the cluster's scheduler looks at about every
30 s, far too late for a trigger. So this broker keeps a sorted set beside django-q2's list: a task due later is
added with its due time as the score, and every `dequeue` (each cluster's pusher calls it about once a second)
first moves the tasks that fell due onto the list, in one Lua script, so a task is moved by exactly one cluster
however many poll at once. The rest is django-q2's own broker: one list, BLPOP, no acknowledgment (a task a
worker took and never finished is lost; the 15-minute "push pending" schedule pushes its record anyway, and the
record's claim, not the queue, keeps one push at a time).
"""

from __future__ import annotations

import time

from django_q.brokers.redis_broker import Redis

# Move at most this many due tasks per call: a backlog is moved over a few polls, never in one long script.
MOVE_BATCH = 500

_MOVE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, task in ipairs(due) do
  redis.call('RPUSH', KEYS[2], task)
end
if #due > 0 then
  redis.call('ZREM', KEYS[1], unpack(due))
end
return #due
"""


class DelayingRedis(Redis):
    """django-q2's Redis broker plus `enqueue_later(task, due)`; `Q_CLUSTER["broker_class"]` names it."""

    def __init__(self, list_key: str | None = None):
        super().__init__(list_key=list_key)
        self.later_key = f"{self.list_key}:later"
        self._move_due = self.connection.register_script(_MOVE_DUE)

    def enqueue_later(self, task: str, due: float) -> str:
        """Queue a packed task (django_q.signing) to become visible to workers at `due` (epoch seconds)."""
        self.connection.zadd(self.later_key, {task: due})
        return task

    def move_due(self, now: float | None = None) -> int:
        """Put every task whose time has come on the list workers take from; how many were moved."""
        return int(self._move_due(keys=[self.later_key, self.list_key],
                                  args=[now if now is not None else time.time(), MOVE_BATCH]))

    def dequeue(self):
        self.move_due()
        return super().dequeue()

    def queue_size(self) -> int:
        return super().queue_size() + self.connection.zcard(self.later_key)

    def delete_queue(self):
        self.connection.delete(self.later_key)
        return super().delete_queue()

    def purge_queue(self):
        self.connection.delete(self.later_key)
        return super().purge_queue()

    def backlog(self, now: float | None = None) -> tuple[int, float | None]:
        """Tasks ready for a worker, and the due time of the oldest task that fell due but was never moved (no
        cluster is polling), or None."""
        now = now if now is not None else time.time()
        oldest = self.connection.zrangebyscore(self.later_key, "-inf", now, start=0, num=1, withscores=True)
        return int(self.connection.llen(self.list_key)), (oldest[0][1] if oldest else None)
