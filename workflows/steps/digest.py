"""The ``digest`` step: a summary of the past day or week posted to a channel, with a chart.

::

    - id: weekly
      digest: {channel: "#ops", period: week, workflow: purchase-approval, title: "PO week"}

It reports the runs requested in the last 24 hours or 7 days up to now (a
schedule trigger picks "now"): requests by workflow and outcome, median and
p90 cycle time, approvals pending and whom they wait on (oldest first),
failures and triage share (``workflows/stats.py`` computes them). Without a
``workflow`` it covers every workflow except its own, so a digest does not
count its own runs. An empty period gets one line, "Nothing to report for …".

The chart (requests and median cycle time per day) is a PNG drawn with
matplotlib's Agg renderer in a thread, uploaded into the digest's thread.
Re-running the step updates the same message (``ctx.send``'s key) and does
not upload the chart again (``ctx.upload`` goes through the outbox, keyed ``chart``).
"""

from __future__ import annotations

import asyncio
import io
import math
from datetime import timedelta

from workflows.language.steps.digest import DigestStep
from workflows.ports import ChatError, ChatFile, ChatMessage, MessageRef
from workflows.stats import DayStats, Stats, collect, summary
from workflows.steps.base import StepContext, StepError, StepOutcome, evaluate

CHART_WIDTH, CHART_HEIGHT, CHART_DPI = 900, 420, 100
PERIODS = {"day": timedelta(days=1), "week": timedelta(weeks=1)}


async def run_digest(ctx: StepContext) -> StepOutcome:
    assert isinstance(ctx.step, DigestStep)
    spec = ctx.step.digest
    now = ctx.clock.now()
    start = now - PERIODS[spec.period]
    stats = await collect(
        ctx.store,
        start=start,
        end=now,
        now=now,
        workflow=spec.workflow,
        exclude=() if spec.workflow else (ctx.workflow.name,),
    )
    channel = str(evaluate(ctx, spec.channel))
    title = str(evaluate(ctx, spec.title)) if spec.title else f"{_adjective(spec.period)} digest"
    period = f"the past {spec.period} ({start:%d %b} – {now:%d %b %Y})"
    if stats.empty:
        ref = await ctx.send(
            channel, ChatMessage("digest_empty", {"title": title, "period": period}), None, "digest"
        )
        return StepOutcome(
            output={"channel": ref.channel, "ts": ref.ts, "volume": 0},
            summary=f"nothing to report for the past {spec.period}",
        )
    data = {"title": title, "period": period, "stats": summary(stats), "chart": spec.chart}
    ref = await ctx.send(channel, ChatMessage("digest", data), None, "digest")
    if spec.chart:
        await _upload_chart(ctx, stats, ref, title)
    return StepOutcome(
        output={
            "channel": ref.channel,
            "ts": ref.ts,
            "volume": stats.volume,
            "failures": stats.failures,
            "rejections": stats.rejections,
            "outcomes": stats.outcomes,
            "pending": stats.pending_total,
        },
        summary=f"digest posted: {stats.volume} requests, {stats.pending_total} approvals pending",
    )


def _adjective(period: str) -> str:
    return "Daily" if period == "day" else "Weekly"


async def _upload_chart(ctx: StepContext, stats: Stats, ref: MessageRef, title: str) -> None:
    # Drawing takes tens of milliseconds of CPU: off the event loop.
    png = await asyncio.to_thread(render_chart, stats.days, title)
    chart = ChatFile(f"digest-{ctx.run_id}.png", png, title)
    try:
        await ctx.upload(ref.channel, chart, ref.ts, "chart")
    except ChatError as exc:
        raise StepError(f"digest chart: {exc}", retryable=exc.retryable) from None


def render_chart(days: list[DayStats], title: str) -> bytes:
    """A PNG of CHART_WIDTH x CHART_HEIGHT pixels: requests per day (bars), median cycle (line)."""
    # Imported here: matplotlib takes a while to import and only digests need it. The
    # object API with the Agg canvas touches no global pyplot state, so threads are safe.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(CHART_WIDTH / CHART_DPI, CHART_HEIGHT / CHART_DPI), dpi=CHART_DPI)
    FigureCanvasAgg(figure)
    volume_axis = figure.add_subplot()
    positions = list(range(len(days)))
    volume_axis.bar(positions, [d.volume for d in days], color="#4a90d9", label="Requests")
    volume_axis.set_ylabel("Requests")
    volume_axis.set_xticks(positions, [f"{d.day:%a %d}" for d in days])
    volume_axis.yaxis.set_major_locator(MaxNLocator(integer=True))
    cycles = [d.median_cycle_seconds for d in days]
    hours = max((c for c in cycles if c is not None), default=0.0) >= 7200
    scale, unit = (3600.0, "hours") if hours else (60.0, "minutes")
    cycle_axis = volume_axis.twinx()
    cycle_axis.plot(
        positions,
        [math.nan if c is None else c / scale for c in cycles],
        color="#d9534f",
        marker="o",
        label=f"Median cycle time ({unit})",
    )
    cycle_axis.set_ylabel(f"Median cycle time ({unit})")
    cycle_axis.set_ylim(bottom=0)
    figure.suptitle(title, x=0.02, ha="left")
    figure.legend(loc="upper right", ncols=2, fontsize="small", frameon=False)
    figure.subplots_adjust(top=0.85, bottom=0.1, left=0.08, right=0.92)
    buffer = io.BytesIO()
    # No bbox_inches="tight": the image keeps exactly the size asked for.
    figure.savefig(buffer, format="png", dpi=CHART_DPI)
    return buffer.getvalue()
