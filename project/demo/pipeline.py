"""The demo pipeline: a research-report agent run by :mod:`dagstream_app.runner`.

gather sources -> three parallel summarisers (LLM-like token costs) -> a plan
that adds one "read" node per source at run time -> merge into a draft -> human
review -> publish. Timings, token counts and wording are drawn from a seed, per
node, so a run is repeatable whatever order its nodes happen to run in. The
sources are fictional demo data.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from dagstream_app.runner import Context, HumanGate, Pipeline, Runner, Task

__all__ = ["DEMO_NAME", "DemoSettings", "build_pipeline", "build_runner", "run_demo"]

log = logging.getLogger(__name__)

DEMO_NAME = "research-report"
# The demo's two local people (the server command creates them): review gates wait for them.
DEMO_PEOPLE = ("demo", "reviewer")
MODEL = "demo-llm-medium"
PRICE_IN = 3.0 / 1_000_000  # per prompt token
PRICE_OUT = 15.0 / 1_000_000  # per completion token
SEARCH_PRICE = 0.005  # per web search

Sleep = Callable[[float], Awaitable[Any]]


@dataclass(frozen=True)
class Source:
    key: str
    publisher: str
    title: str
    year: int
    finding: str
    quote: str


@dataclass(frozen=True)
class Topic:
    title: str
    question: str
    sources: tuple[Source, ...]
    evidence: tuple[str, ...]
    economics: tuple[str, ...]
    risks: tuple[str, ...]


TOPICS: tuple[Topic, ...] = (
    Topic(
        "Heat pumps in cold climates",
        "Do air-source heat pumps keep homes warm below -15 °C, and at what cost?",
        (
            Source(
                "nordic-trial",
                "Nordic Energy Lab",
                "Field trial of 1,200 air-source heat pumps in sub-arctic homes",
                2024,
                "Seasonal efficiency averaged 2.7, falling to 1.9 on days below -20 °C.",
                "No monitored home ran its backup heater for more than 4% of the season.",
            ),
            Source(
                "owner-survey",
                "Prairie Housing Council",
                "Five winters with cold-climate heat pumps: an owner survey",
                2023,
                "82% of owners would buy again; defrost-cycle noise was the top complaint.",
                "People stopped noticing the unit after the first winter.",
            ),
            Source(
                "grid-peaks",
                "Continental Grid Institute",
                "Winter peak demand from electrified heating",
                2024,
                "Peaks rise 18-30% in fully electrified districts without pre-heating.",
                "Thermal storage turns a peak problem into a scheduling problem.",
            ),
            Source(
                "retrofit-costs",
                "Home Retrofit Observatory",
                "Installed costs of heat pumps, 2019-2024",
                2024,
                "Median installed cost fell 14% in five years; ductwork adds 2,000-6,000.",
                "The heat pump is rarely the expensive part; the house is.",
            ),
            Source(
                "r290-lab",
                "Refrigerant Policy Review",
                "Propane (R290) units at low temperatures",
                2023,
                "R290 units kept 90% of rated capacity at -15 °C in lab tests.",
                "The newer refrigerant is also the better cold-weather performer.",
            ),
        ),
        (
            "Field data from sub-arctic homes show seasonal efficiency near 2.7, so each "
            "unit of electricity delivers almost three units of heat over a winter.",
            "Efficiency drops on the coldest days but stays above 1.9, better than "
            "resistive heating even at -20 °C.",
            "Owner satisfaction is high after several winters; comfort complaints are rare.",
        ),
        (
            "Installed costs have fallen about 14% in five years, but older homes often need "
            "ductwork or radiator upgrades that can double the bill.",
            "Running costs beat oil and direct electric heat in every climate zone studied.",
            "Grid upgrades for winter peaks are the hidden, shared cost of mass adoption.",
        ),
        (
            "Winter peaks could rise by up to 30% where whole districts electrify at once.",
            "Defrost cycles are noisy, which matters in dense housing.",
            "Most studies cover well-insulated Nordic homes; results may not transfer to "
            "leaky older stock.",
        ),
    ),
    Topic(
        "Four-day work week pilots",
        "Do four-day week pilots keep output steady, and who struggles with them?",
        (
            Source(
                "uk-pilot",
                "Work Time Research Group",
                "Six-month pilot across 61 employers",
                2023,
                "56 of 61 employers continued the schedule after the pilot ended.",
                "Meetings shrank before output did.",
            ),
            Source(
                "burnout-panel",
                "Occupational Health Panel",
                "Burnout and sleep before and after a 32-hour week",
                2024,
                "Self-reported burnout fell 39%; average sleep rose by 24 minutes a night.",
                "The extra day was mostly spent recovering, not on second jobs.",
            ),
            Source(
                "retail-case",
                "Retail Operations Review",
                "Shift-based teams on a compressed week",
                2024,
                "Shift workers on 4x10 hours reported more fatigue, not less.",
                "Compressing hours is not the same as reducing them.",
            ),
            Source(
                "revenue-audit",
                "Small Business Ledger",
                "Revenue of pilot firms against matched controls",
                2023,
                "Revenue was flat to slightly up (+1.4%) against matched controls.",
                "Nobody found the productivity cliff they were afraid of.",
            ),
        ),
        (
            "Most employers in the largest pilot kept the schedule, a strong signal that "
            "output held up in practice.",
            "Burnout and sleep measures improved clearly within six months.",
            "Gains were largest where meetings and handoffs were redesigned first.",
        ),
        (
            "Revenue of pilot firms tracked matched controls, slightly ahead on average.",
            "Recruitment and retention savings appear early and are easy to measure.",
            "Costs rise where cover is needed, such as retail and care shifts.",
        ),
        (
            "Compressed schedules (4x10 hours) can increase fatigue for shift workers.",
            "Pilot firms volunteered, so they may be unusually ready for the change.",
            "Six months is short; long-run effects on output are still unknown.",
        ),
    ),
    Topic(
        "Microplastics in drinking water",
        "How much microplastic is in drinking water, and does treatment remove it?",
        (
            Source(
                "tap-survey",
                "Water Quality Consortium",
                "Microplastics in tap water from 14 cities",
                2024,
                "Median of 4 particles per litre above 20 micrometres; bottled water was higher.",
                "The smaller the particle, the less we can say with confidence.",
            ),
            Source(
                "treatment-study",
                "Municipal Treatment Lab",
                "Removal of particles by conventional treatment",
                2023,
                "Coagulation plus sand filtration removed 82-95% of particles over 10 µm.",
                "Plants built for turbidity already do most of the work.",
            ),
            Source(
                "nano-methods",
                "Analytical Methods Review",
                "Counting nanoplastics: methods compared",
                2024,
                "Counts below 1 µm differ by two orders of magnitude between methods.",
                "Comparing studies is harder than running them.",
            ),
            Source(
                "tox-review",
                "Environmental Health Review",
                "Health effects of ingested microplastics: a review",
                2024,
                "No consistent human health effect was found at measured exposures.",
                "Absence of evidence here mostly reflects absence of good studies.",
            ),
            Source(
                "kettle-trick",
                "Home Water Study",
                "Boiling and filtering hard tap water",
                2024,
                "Boiling hard water then filtering removed up to 90% of particles.",
                "Limescale turns out to be a decent trap.",
            ),
        ),
        (
            "Tap water carries a few particles per litre above 20 µm, fewer than bottled water.",
            "Conventional treatment removes most particles above 10 µm.",
            "Household boiling and filtering of hard water removes many of the rest.",
        ),
        (
            "Most municipal plants already meet high removal rates without new equipment.",
            "Membrane upgrades for the smallest particles would cost far more than current "
            "treatment.",
            "Monitoring is cheap to start but expensive to standardise.",
        ),
        (
            "Nanoplastic counts disagree by orders of magnitude between methods.",
            "Health evidence is thin rather than reassuring.",
            "Particles under 1 µm are rarely measured at all.",
        ),
    ),
    Topic(
        "Protected bike lanes and local retail",
        "Do protected bike lanes hurt or help shops on the streets that get them?",
        (
            Source(
                "sales-panel",
                "Urban Economics Lab",
                "Card spending on 40 streets before and after new lanes",
                2024,
                "Spending rose 4-9% on streets with protected lanes against control streets.",
                "Cyclists spend less per visit but visit more often.",
            ),
            Source(
                "merchant-views",
                "Main Street Association",
                "Merchants' expectations versus outcomes",
                2023,
                "Merchants overestimated customers arriving by car by roughly half.",
                "We guessed our customers drove; most of them walked.",
            ),
            Source(
                "parking-audit",
                "City Transport Office",
                "Parking occupancy after lane installation",
                2024,
                "Peak parking occupancy dropped from 96% to 81% after 20% of spaces were removed.",
                "Fewer spaces, yet it became easier to find one.",
            ),
            Source(
                "vacancy-data",
                "Commercial Property Monitor",
                "Retail vacancy on redesigned streets",
                2024,
                "Vacancy fell 2 points on redesigned streets while the city rate was flat.",
                "Footfall follows comfort.",
            ),
        ),
        (
            "Card spending rose modestly on streets that got protected lanes.",
            "Visits became more frequent even as spending per visit fell.",
            "Vacancy improved on redesigned streets relative to the city.",
        ),
        (
            "Construction periods hurt sales for a few months before the gains appear.",
            "Removing some parking rarely hurts because most customers arrive on foot.",
            "Loading zones are the one parking change shops notice.",
        ),
        (
            "Merchants' fears are real during construction and need a support plan.",
            "Results come from dense, walkable districts; car-oriented strips may differ.",
            "Spending data cover card payments only.",
        ),
    ),
)

SUMMARISERS = (
    ("summarise-evidence", "Summarise: evidence", "evidence"),
    ("summarise-economics", "Summarise: costs", "economics"),
    ("summarise-risks", "Summarise: risks", "risks"),
)


@dataclass(frozen=True)
class DemoSettings:
    """How the demo runs: pace, randomness, review timeout (None: wait) and budget."""

    seed: int
    speed: float = 1.0
    review_timeout: float | None = 600.0
    budget: float | None = 0.32
    budget_step: float = 0.1
    sleep: Sleep = asyncio.sleep


def _rng(run_seed: str, node_id: str) -> random.Random:
    return random.Random(f"{run_seed}:{node_id}")


def pick_topic(run_seed: str) -> Topic:
    return _rng(run_seed, "topic").choice(TOPICS)


def _llm_cost(rng: random.Random, ctx: Context, low: int, high: int, out: int) -> None:
    tokens_in = rng.randint(low, high)
    tokens_out = rng.randint(out // 2, out)
    ctx.metrics.update(model=MODEL, tokens_in=tokens_in, tokens_out=tokens_out)
    ctx.add_cost(round(tokens_in * PRICE_IN + tokens_out * PRICE_OUT, 6))


def reviewers(run_seed: str) -> tuple[tuple[str, ...], int]:
    """Who the run's review gate waits for, and how many approvals it needs: about half
    the runs need both demo people (a quorum of 2), the others the demo user alone."""
    if _rng(run_seed, "review").random() < 0.5:
        return DEMO_PEOPLE, 2
    return DEMO_PEOPLE[:1], 1


def build_pipeline(run_seed: str, settings: DemoSettings) -> Pipeline:
    """The research-report pipeline for one run (its topic and numbers come from ``run_seed``)."""
    topic = pick_topic(run_seed)
    assignees, quorum = reviewers(run_seed)

    async def work(ctx: Context) -> random.Random:
        rng = _rng(run_seed, ctx.node_id)
        await settings.sleep(rng.uniform(0.3, 3.0) / settings.speed)
        return rng

    async def gather(ctx: Context) -> dict[str, Any]:
        rng = await work(ctx)
        searches = rng.randint(2, 4)
        ctx.metrics["searches"] = searches
        ctx.add_cost(searches * SEARCH_PRICE)
        return {
            "topic": topic.title,
            "question": topic.question,
            "sources": [
                {"key": s.key, "publisher": s.publisher, "title": s.title, "year": s.year}
                for s in topic.sources
            ],
            "note": "Sources are fictional demo data.",
        }

    def summariser(aspect: str) -> Callable[[Context], Awaitable[dict[str, Any]]]:
        async def summarise(ctx: Context) -> dict[str, Any]:
            rng = await work(ctx)
            points: tuple[str, ...] = getattr(topic, aspect)
            chosen = sorted(rng.sample(range(len(points)), k=rng.randint(2, len(points))))
            _llm_cost(rng, ctx, 6_000, 14_000, 1_100)
            return {"summary": " ".join(points[i] for i in chosen), "model": MODEL}

        return summarise

    async def read(ctx: Context) -> dict[str, Any]:
        rng = await work(ctx)
        source = next(s for s in topic.sources if f"read-{s.key}" == ctx.node_id)
        _llm_cost(rng, ctx, 3_000, 8_000, 600)
        return {
            "source": f"{source.publisher}, {source.title} ({source.year})",
            "finding": source.finding,
            "quote": source.quote,
        }

    async def plan(ctx: Context) -> dict[str, Any]:
        rng = await work(ctx)
        _llm_cost(rng, ctx, 2_000, 4_000, 300)
        for source in topic.sources:
            step = Task(f"read-{source.key}", read, after=[ctx.node_id], label=source.publisher)
            await ctx.add_node(step, before=["merge"])
        return {"deep_reads": [s.publisher for s in topic.sources]}

    async def merge(ctx: Context) -> dict[str, Any]:
        rng = await work(ctx)
        _llm_cost(rng, ctx, 10_000, 16_000, 1_800)
        draft = _draft(topic, ctx.results)
        return {"title": _title(topic), "words": len(draft.split()), "draft": draft}

    def review(ctx: Context) -> dict[str, Any]:
        report = ctx.inputs["merge"]
        hint = "Approve to publish, modify to send notes to the editor, reject to stop."
        if settings.review_timeout is not None:
            hint += f" Approves itself after {settings.review_timeout:g} s if nobody decides."
        # The card's heading names the report: the body starts after the draft's title line.
        body = report["draft"].removeprefix(report["title"]).lstrip("\n")
        return {
            "title": f"Publish “{report['title']}”?",
            "body": body,
            "words": report["words"],
            "hint": hint,
        }

    async def publish(ctx: Context) -> dict[str, Any]:
        rng = await work(ctx)
        report = ctx.results["merge"]
        notes = ctx.feedback.get("review")
        slug = "-".join(topic.title.lower().split())
        return {
            "title": report["title"],
            "url": f"https://reports.example.org/{slug}/{rng.randrange(16**6):06x}",
            "words": report["words"],
            "revision": f"Edited to the reviewer's notes: {notes}" if notes else "As drafted",
        }

    steps: list[Task | HumanGate] = [Task("gather", gather, label="Gather sources")]
    steps += [
        Task(node_id, summariser(aspect), after=["gather"], label=label)
        for node_id, label, aspect in SUMMARISERS
    ]
    steps += [
        Task("plan-reads", plan, after=[s[0] for s in SUMMARISERS], label="Plan deep reads"),
        Task("merge", merge, after=["plan-reads"], label="Draft the report"),
        HumanGate(
            "review",
            review,
            after=["merge"],
            label="Human review",
            assignees=assignees,
            quorum=quorum,
            timeout=settings.review_timeout,
            default="approve" if settings.review_timeout is not None else None,
        ),
        Task("publish", publish, after=["review"], label="Publish"),
    ]
    return Pipeline(DEMO_NAME, steps)


def _title(topic: Topic) -> str:
    return f"{topic.title}: what the evidence says"


def _draft(topic: Topic, results: Any) -> str:
    reads = [v for k, v in results.items() if k.startswith("read-")]
    lines = [
        _title(topic),
        "",
        f"Question: {topic.question}",
        "",
        "Evidence. " + results["summarise-evidence"]["summary"],
        "",
        "Costs. " + results["summarise-economics"]["summary"],
        "",
        "Risks and open questions. " + results["summarise-risks"]["summary"],
        "",
        "Key findings:",
        *(f"- {r['finding']} ({r['source']})" for r in reads),
        "",
        "Sources are fictional demo data.",
    ]
    return "\n".join(lines)


def build_runner(run_seed: str, settings: DemoSettings) -> Runner:
    """A runner for one demo run, with the demo's budget."""
    return Runner(
        build_pipeline(run_seed, settings),
        concurrency=4,
        budget=settings.budget,
        budget_step=settings.budget_step,
    )


async def run_demo(
    settings: DemoSettings, *, every: float | None, report: Callable[[str], None]
) -> None:
    """Run the demo once, or start a new run every ``every`` seconds until cancelled.

    Cancelling this stops every run in flight; each ends as failed.
    """
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())

    async def one(number: int) -> None:
        dag_id = f"report-{stamp}-{number}"
        run_seed = f"{settings.seed}:{number}"
        report(f"Run {dag_id} started: {pick_topic(run_seed).title}")
        try:
            result = await build_runner(run_seed, settings).run(dag_id)
        except Exception as exc:  # one broken run must not stop the others
            log.exception("dagstream demo: run %s crashed", dag_id)
            report(f"Run {dag_id} crashed: {exc}")
            return
        report(f"Run {dag_id} {result.status} (spent ${result.spent:.2f})")

    await repeat(one, every)


async def repeat(one: Callable[[int], Coroutine[Any, Any, None]], every: float | None) -> None:
    """Run ``one(1)`` (only, without ``every``), or start ``one(2)``, ``one(3)``, ...
    every ``every`` seconds beside the runs still going, until cancelled; cancelling
    cancels the runs in flight."""
    runs: set[asyncio.Task[None]] = set()
    try:
        number = 1
        while True:
            task = asyncio.create_task(one(number))
            runs.add(task)
            task.add_done_callback(runs.discard)
            if not every:
                await task
                return
            await asyncio.sleep(every)
            number += 1
    finally:
        for task in list(runs):
            task.cancel()
        await asyncio.gather(*runs, return_exceptions=True)
