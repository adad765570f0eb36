"""The incident the demo data directory ships: support-reply's prompt v7.1 (2026-11-04), as
the on-call person handled it, replayed at the times of its story through the console's own
paths, so every page that reads incidents, the audit trail or the flag history has something
true to show.

The story (the history's logs tell the same: v7.1 from 13:00, v7 again from 16:30):

- 13:00 maria ships prompt v7.1 ("Warmer greeting") on the flag file; quality and thumbs-down
  get worse at once (the onset);
- 13:35 sam, on call, sees the quality drop and opens a SEV3 incident with the
  prompt-regression playbook, the prompt change as its suspect;
- 14:20 identified; maria asks for time to fix the prompt forward;
- 16:30 the fix is not ready: sam reverts the prompt to v7 from the console (the real
  rollback path: confirm, call the flagd file, read back, audit), recorded against the
  incident; 16:35 mitigated;
- 18:30 quality has been back at its baseline since 17:00: resolved. The post-mortem has
  its summary, root cause and lessons; two action items are still open.

So the review of 2026-W45 shows it with TTD 35 min, TTM 210 min and TTR 330 min, detected by
a person and rolled back, and the weeks after list it as still open (its action items).

Every write runs under `timestamps.replaying`, which is what makes the audit trail, the flag
file's history and the incident log record the story's times; the writes themselves are the
ordinary ones (`IncidentLog`, `rollback.actions.execute`, the flagd file backend).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from app.access.identity import Identity, Source
from app.access.roles import Role
from app.changes.events import ChangeEvent
from app.demo.flags import demo_flag_backend
from app.flags.base import Outcome
from app.incidents.briefing import link_actions_to_steps
from app.incidents.log import Incident, IncidentLog
from app.incidents.playbooks import PLAYBOOKS_DIR, load_playbook
from app.rollback.actions import Action, execute
from app.timestamps import replaying

FEATURE = "support-reply"
PROMPT_FLAG = "support-reply-prompt"
PLAYBOOK = "prompt-regression"
ONSET = datetime(2026, 11, 4, 13, 0)
OPENED = datetime(2026, 11, 4, 13, 35)
IDENTIFIED = datetime(2026, 11, 4, 14, 20)
ROLLED_BACK = datetime(2026, 11, 4, 16, 30)
MITIGATED = datetime(2026, 11, 4, 16, 35)
RESOLVED = datetime(2026, 11, 4, 18, 30)
POSTMORTEM = datetime(2026, 11, 5, 10, 0)
ON_CALL = "sam"
# sam works the console without sign-in, as a responder: the trail and the incident record
# "sam (responder)", as they would for a press on the page.
SAM = Identity(ON_CALL, Role.RESPONDER, Source.LOCAL)
AUTHOR = "maria"


class DemoIncidentError(RuntimeError):
    """The replay could not happen as the story says (the demo's flags are not as expected)."""


@dataclass(frozen=True)
class Minutes:
    """The story's TTD, TTM and TTR, from the onset (what the review must show)."""

    ttd: float = (OPENED - ONSET).total_seconds() / 60
    ttm: float = (ROLLED_BACK - ONSET).total_seconds() / 60
    ttr: float = (RESOLVED - ONSET).total_seconds() / 60


def suspect_of(changes: list[ChangeEvent]) -> ChangeEvent:
    """The declared change v7 -> v7.1 among the demo's declared changes."""
    for c in changes:
        if c.feature == FEATURE and c.kind == "prompt" and c.to_value == "v7.1":
            return c
    raise DemoIncidentError("the demo's declared changes have no support-reply prompt v7.1")


def replay_prompt_incident(data_dir: Path, changes: list[ChangeEvent]) -> Incident:
    """Replay the story above on a data directory whose flag file stands as the history
    begins (`flags.start_demo_flags`); returns the incident as stored."""
    data_dir = Path(data_dir)
    suspect = suspect_of(changes)
    with replaying(ONSET):
        # maria's change, made on the flag system itself (not from the console)
        demo_flag_backend(data_dir).set_variant(
            PROMPT_FLAG, "production", "v7.1", comment=f"{AUTHOR}: Warmer greeting"
        )
    log = IncidentLog(data_dir, identity=SAM)
    with replaying(OPENED):
        incident = log.open(
            "support-reply answers got worse after prompt v7.1",
            [FEATURE],
            "SEV3",
            commander=ON_CALL,
            playbook=PLAYBOOK,
            metric="quality_score",
            onset=ONSET,
            suspect_change_ids=[suspect.change_id],
            actor=ON_CALL,
        )
        log.add_note(
            incident.id,
            "Quality of support replies down from about 0.91 to 0.75 since 13:00 and thumbs-down "
            "up; v7.1 (warmer greeting) went out then.",
            actor=ON_CALL,
        )
        log.mark_step(incident.id, "confirm-quality-drop", "done", actor=ON_CALL)
    with replaying(IDENTIFIED):
        log.set_status(incident.id, "identified", actor=ON_CALL)
        log.mark_step(incident.id, "scope-prompt", "done", actor=ON_CALL)
        log.add_note(
            incident.id,
            "Only v7.1 requests score low. maria is fixing the prompt forward; "
            "we hold the rollback until 16:30.",
            actor=ON_CALL,
        )
    with replaying(ROLLED_BACK):
        result = execute(
            data_dir,
            FEATURE,
            Action.REVERT_PROMPT,
            "v7",
            actor=SAM,
            reason="quality and thumbs-down worse since prompt v7.1; the fix forward is not ready",
            incident_id=incident.id,
        )
        if result.outcome is not Outcome.VERIFIED:
            raise DemoIncidentError(f"the demo's prompt rollback did not verify: {result.message}")
        playbook = load_playbook(PLAYBOOKS_DIR / f"{PLAYBOOK}.yaml")
        link_actions_to_steps(data_dir, log.get(incident.id), playbook)
    with replaying(MITIGATED):
        log.set_status(incident.id, "mitigated", actor=ON_CALL)
        log.mark_step(incident.id, "tell-people", "done", actor=ON_CALL)
    with replaying(RESOLVED):
        log.add_note(incident.id, "Quality back at its baseline (0.92) since 17:00.", actor=ON_CALL)
        log.set_status(incident.id, "resolved", actor=ON_CALL)
    with replaying(POSTMORTEM):
        _write_postmortem(log, incident.id)
    return log.get(incident.id)


def _write_postmortem(log: IncidentLog, incident_id: str) -> None:
    sections = {
        "summary": (
            "Prompt v7.1 of support-reply (a warmer greeting) lowered answer quality from 0.91 to "
            "0.75 and tripled thumbs-down from 13:00 until it was reverted to v7 at 16:30."
        ),
        "root_cause": (
            "The new greeting pushed the answer's first steps below the fold of the reply: the "
            "quality judge and the users scored the replies as less helpful."
        ),
        "went_well": "The quality drop was seen and the incident opened within 35 minutes.",
        "went_wrong": (
            "We held the rollback for two hours waiting for a fix forward while users got worse answers."
        ),
    }
    for name, text in sections.items():
        log.set_section(incident_id, name, text, actor=ON_CALL)
    log.set_action_item(
        incident_id,
        "Canary prompt versions on 10% of traffic before a full rollout",
        AUTHOR,
        "prevent",
        item_id="AI-demo-canary",
        actor=ON_CALL,
    )
    log.set_action_item(
        incident_id,
        "Roll back first, fix forward after: write it in the prompt-regression playbook",
        ON_CALL,
        "process",
        item_id="AI-demo-rollback-first",
        actor=ON_CALL,
    )
