"""The post-mortem: one markdown file per incident, ready for a repository or a wiki.

Numbers (impact, time to detect, mitigate and resolve) are computed from the logs and the
timeline at export time; the sections that need a person's words (summary, root cause,
lessons, action items) are edited in the app and stored as incident events. Times are UTC.
"""

from __future__ import annotations

from pathlib import Path

from app.incidents.briefing import Briefing, brief, money
from app.incidents.log import Incident, IncidentLog, now_utc
from app.incidents.timeline import format_duration
from app.storage.datadir import DataDir, as_datadir
from app.timestamps import display

PLACEHOLDER_TEXT = "_To be written._"
SECTION_TITLES = {
    "summary": "Summary",
    "root_cause": "Root cause",
    "went_well": "What went well",
    "went_wrong": "What went wrong",
    "got_lucky": "Where we got lucky",
}


def export(data_dir: DataDir | Path, incident_id: str) -> str:
    """The post-mortem of one incident as markdown. It reads what is stored (logs, ledger,
    cached flag histories) and writes nothing; no flag backend is called."""
    dd = as_datadir(data_dir)
    incident = IncidentLog(dd).get(incident_id)
    return render(brief(dd, incident, now_utc()))


def draft_summary(b: Briefing) -> str:
    """A first summary from the facts, for the person writing the post-mortem to edit."""
    inc, im = b.incident, b.impact
    text = f"{', '.join(inc.features) or 'A feature'} degraded"
    if inc.onset:
        text += f" from {display(inc.onset)}"
    if im is not None and b.totals is not None:
        text += (
            f" ({im.metric}), affecting {b.totals.requests:,} requests from "
            f"{b.totals.users:,} users across {b.totals_label}"
        )
    elif im is not None:
        text += (
            f" ({im.metric}; {im.scope.describe()}), affecting {im.requests:,} requests "
            f"from {im.users:,} users"
        )
    if b.suspect:
        text += f". Suspect change: {b.suspect.describe()}"
    if b.mitigated_at:
        text += f". Mitigated by a verified flag rollback at {display(b.mitigated_at)}"
    return text + "."


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ").strip() or " "


def _table(header: list[str], rows: list[list[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines + [""]


def _section(incident: Incident, name: str, default: str = PLACEHOLDER_TEXT) -> str:
    text = incident.sections.get(name, ("", 0))[0].strip()
    return text or default


def _quality(im) -> str:
    if im.quality is None or im.baseline_quality is None:
        return "n/a"
    return f"{im.quality:.3f} against {im.baseline_quality:.3f} ({im.quality_delta:+.3f})"


def _errors(im) -> str:
    if im.error_rate is None:
        return f"{im.errors:,} (n/a)"
    return f"{im.errors:,} ({100 * im.error_rate:.2f}% against {100 * (im.baseline_error_rate or 0):.2f}%)"


def _impacts_by_feature(b: Briefing) -> list[str]:
    """An incident over several features: one row each, and their sum (users counted once)."""
    total = b.totals
    first = b.impacts[0]
    lines = [
        f"Computed from the logs from the onset ({display(first.onset)}) to the end "
        "of each feature's window; baseline: each feature's 24 hours before the onset. "
        "The total adds the features whose metric got worse (all of them if none did); "
        "a user of several counts once.",
        "",
    ]
    rows: list[list[object]] = [
        [
            im.feature,
            im.scope.describe(),
            format_duration(im.duration),
            f"{im.requests:,}",
            f"{im.users:,}",
            _errors(im),
            f"{im.extra_errors:,}",
            _quality(im),
            money(im.cost_usd),
            money(im.extra_cost_usd),
        ]
        for im in b.impacts
    ]
    rows.append(
        [
            f"total: {b.totals_label}",
            "",
            "",
            f"{total.requests:,}",
            f"{total.users:,}",
            f"{total.errors:,}",
            f"{total.extra_errors:,}",
            "",
            money(total.cost_usd),
            money(total.extra_cost_usd),
        ]
    )
    return lines + _table(
        [
            "Feature",
            "Scope",
            "Duration",
            "Requests affected",
            "Users affected",
            "Errors",
            "Extra errors",
            "Quality",
            "Cost",
            "Extra cost",
        ],
        rows,
    )


def render(b: Briefing) -> str:
    inc, im = b.incident, b.impact
    out = [f"# Post-mortem: {inc.title} ({inc.id})", ""]
    out += _table(
        ["Field", "Value"],
        [
            ["Severity", inc.severity],
            ["Status", inc.status],
            ["Incident commander", inc.commander or "(unassigned)"],
            ["Communications lead", inc.comms_lead or "(unassigned)"],
            ["Features", ", ".join(inc.features)],
            ["Playbook", inc.playbook or "none"],
            ["Opened", display(inc.opened_at)],
            ["Exported", display(b.now)],
        ],
    )
    out += ["## Summary", "", _section(inc, "summary", draft_summary(b)), ""]

    out += ["## Impact", ""]
    if im is None:
        out += ["No numbers: the incident has no onset or no logs for its feature.", ""]
    elif b.totals is not None:
        out += _impacts_by_feature(b)
    else:
        out += [
            f"Computed from the logs from the onset ({display(im.onset)}) to "
            f"{display(im.end)}; baseline: the 24 hours before the onset.",
            "",
        ]
        out += _table(
            ["Measure", "Value"],
            [
                ["Scope", im.scope.describe()],
                ["Duration", format_duration(im.duration)],
                ["Requests affected", f"{im.requests:,}"],
                ["Users affected", f"{im.users:,}"],
                ["Errors", _errors(im)],
                ["Extra errors", f"{im.extra_errors:,}"],
                ["Quality", _quality(im)],
                ["Cost", money(im.cost_usd)],
                ["Extra cost", money(im.extra_cost_usd)],
            ],
        )

    ttd = inc.opened_at - inc.onset if inc.onset else None
    out += ["## Detection", ""]
    out += _table(
        ["Measure", "Value"],
        [
            ["First degraded bucket", display(inc.onset, missing="unknown")],
            ["Incident opened", display(inc.opened_at)],
            ["Time to detect", format_duration(ttd)],
            ["How", f"{inc.source}" + (f", metric {inc.metric}" if inc.metric else "")],
        ],
    )

    mitigated, resolved = b.mitigated_at, b.resolved_at
    out += ["## Response", ""]
    out += _table(
        ["Measure", "Value"],
        [
            ["First verified rollback", display(mitigated, missing="none")],
            [
                "Time to mitigate (from onset)",
                format_duration(mitigated - inc.onset) if mitigated and inc.onset else "n/a",
            ],
            [
                "Time to mitigate (from opening)",
                format_duration(mitigated - inc.opened_at) if mitigated else "n/a",
            ],
            ["Resolved", display(resolved, missing="not yet")],
            [
                "Time to resolve (from onset)",
                format_duration(resolved - inc.onset) if resolved and inc.onset else "n/a",
            ],
        ],
    )

    out += ["## Trigger and root cause", ""]
    if b.suspect:
        c = b.suspect.change
        out += [
            f"**Trigger:** {b.suspect.describe()} ({c.source}"
            + (f", by {c.author}" if c.author else "")
            + ")",
            "",
            f"**Evidence:** {b.suspect.evidence}",
            "",
        ]
    else:
        out += ["**Trigger:** no change of ours found in the 48 hours before the onset.", ""]
    out += [f"**Root cause:** {_section(inc, 'root_cause')}", ""]

    out += ["## Investigation", ""]
    out += _investigation(inc)

    out += ["## Timeline", ""]
    out += _table(
        ["Time", "Source", "Event"],
        [
            [display(e.time, seconds=True), e.source, e.text + (" (corrected)" if e.corrected else "")]
            for e in b.timeline
        ],
    )

    out += ["## Actions taken", ""]
    out += (
        _table(
            ["Time", "Action", "Outcome", "Operator"],
            [[display(e.time, seconds=True), e.text, e.outcome or "", e.actor or ""] for e in b.actions],
        )
        if b.actions
        else ["No flag actions were recorded.", ""]
    )

    out += ["## Communications", ""]
    out += (
        _table(
            ["Time", "Message", "Outcome"],
            [[display(e.time, seconds=True), e.text, e.outcome or ""] for e in b.messages],
        )
        if b.messages
        else ["No messages were sent from the console.", ""]
    )

    for name in ("went_well", "went_wrong", "got_lucky"):
        out += [f"## {SECTION_TITLES[name]}", "", _section(inc, name), ""]

    out += ["## Action items", ""]
    items = sorted(inc.action_items.values(), key=lambda i: i["seq"])
    out += (
        _table(
            ["Action item", "Owner", "Type"],
            [[i["text"], i.get("owner") or "(unassigned)", i["type"]] for i in items],
        )
        if items
        else ["None yet.", ""]
    )
    return "\n".join(out).rstrip() + "\n"


def _investigation(inc: Incident) -> list[str]:
    """The views and queries saved to the incident (app/investigate/evidence.py), each with
    its link, its query and its small result table."""
    saved = [e for e in inc.events if e.kind == "evidence"]
    if not saved:
        return ["No views or queries were saved to this incident.", ""]
    out: list[str] = []
    for e in saved:
        d = e.data
        who = f" by {e.actor}" if e.actor else ""
        out += [f"### {d['title']}", "", f"Saved {display(e.at)}{who}. Link: `{d['link']}`", ""]
        if d.get("note"):
            out += [d["note"], ""]
        if d.get("query"):
            out += ["```sql", d["query"].strip(), "```", ""]
        if d.get("columns"):
            out += _table(list(d["columns"]), [list(r) for r in d.get("rows", [])])
            if d.get("rows_total", 0) > len(d.get("rows", [])):
                out += [f"First {len(d['rows'])} of {d['rows_total']} rows.", ""]
    return out
