"""The action server's writes that must survive a database outage, by spool record kind.

Every record in the write spool (``askagency.spool``) comes from the action server: unanswered
questions and FAQ answer counts (``actions.learning``), handoff tickets and the citizen messages
relayed to them (``handoff.conversation``). This mapping says which function writes each kind;
the action server, ``askagency spool replay`` and the tests pass it to ``store`` and
``Spool.replay``. A kind missing here is dead-lettered on replay, so a new write path that
spools adds its line here.
"""

from __future__ import annotations

from askagency.spool import ReplayKinds
from handoff.conversation import replay_message, replay_open
from knowledge_base.unanswered import replay_answered, replay_choice, replay_unanswered

SPOOL_KINDS: ReplayKinds = {
    "unanswered": replay_unanswered,
    "faq_answered": replay_answered,
    "faq_chosen": replay_choice,
    "handoff_open": replay_open,
    "handoff_message": replay_message,
}
