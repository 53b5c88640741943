"""Pipeline images/s with 1, 2, 3... batches in flight, measured in one run on the same images (no Kafka).

Why a benchmark of its own: whether overlapping decode, models and index pays depends on the
cores and on how many threads each stage takes, so the comparison must be made on the machine,
with the same threads, in one sitting. Rounds alternate the in-flight values so a change in the
machine's load hits all of them alike; the median round counts. The batches go through
``EnrichmentPipeline.process_batch`` with a ``BatchTicket``, i.e. the stages and turns the
worker uses; only the publish stage (Kafka) is not there.
"""

from __future__ import annotations

import asyncio
import base64
import io
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from PIL import Image

from processors.pipeline import STAGES, EnrichmentPipeline
from processors.pipeline_benchmark import models_only_rate
from processors.requests import ImageRequest
from processors.samples import fashion_mnist_samples
from processors.staging import StageOrder


@dataclass(frozen=True)
class OverlapReport:
    images_per_run: int
    batch_size: int
    rounds: int
    models_only_images_per_s: float
    images_per_s: dict[int, float]  # in flight -> median over the rounds
    runs: dict[int, list[float]]  # in flight -> every round's images/s
    vs_one_in_flight: dict[int, float]  # ratio of the medians
    paired_vs_one_in_flight: dict[int, float]  # median over rounds of the ratio within a round (robust to drift)
    vs_models: dict[int, float]

    def as_dict(self) -> dict:
        return asdict(self)


async def run_overlapped(
    pipeline: EnrichmentPipeline, batches: Sequence[Sequence[ImageRequest]], in_flight: int
) -> float:
    """Seconds to put every batch through the pipeline with up to ``in_flight`` batches at once."""
    widths = {stage.name: stage.width for stage in pipeline.stages()}
    order, slots = StageOrder(STAGES, widths), asyncio.Semaphore(in_flight)

    async def one(batch: Sequence[ImageRequest]) -> None:
        ticket = order.ticket()
        try:
            await pipeline.process_batch(batch, ticket)
        finally:
            ticket.abandon()
            slots.release()

    start = time.perf_counter()
    tasks = []
    for batch in batches:
        await slots.acquire()
        tasks.append(asyncio.create_task(one(batch)))
    await asyncio.gather(*tasks)
    return time.perf_counter() - start


def _requests(images: int, batch_size: int) -> tuple[list[list[ImageRequest]], list[Image.Image]]:
    samples = fashion_mnist_samples("test", images, 64, "seller", seed=7)
    requests, pil = [], []
    for i, (pid, px) in enumerate(zip(samples.product_ids, samples.pixels, strict=True)):
        buf = io.BytesIO()
        Image.fromarray(px).save(buf, format="JPEG", quality=90)
        b64 = base64.b64encode(buf.getvalue()).decode()
        requests.append(ImageRequest(event_id=f"ov-{i}", product_id=f"ov-{pid}", seller_id="bench", image_b64=b64))
        pil.append(Image.fromarray(px))
    return [requests[i : i + batch_size] for i in range(0, len(requests), batch_size)], pil


def _paired(runs: dict[int, list[float]]) -> dict[int, float]:
    """Per round, each value's rate over the same round's lowest in-flight rate; the median over rounds."""
    base = runs[min(runs)]
    return {n: round(statistics.median(r / b for r, b in zip(v, base, strict=True)), 3) for n, v in runs.items()}


def run_overlap_benchmark(
    pipeline: EnrichmentPipeline,
    in_flights: Sequence[int] = (1, 2, 3),
    images: int = 1024,
    batch_size: int = 64,
    rounds: int = 3,
) -> OverlapReport:
    if not in_flights or min(in_flights) < 1 or rounds < 1:
        raise ValueError("in_flights must be >= 1 and rounds >= 1")
    batches, pil = _requests(images, batch_size)

    async def measure() -> dict[int, list[float]]:
        await pipeline.start()
        await run_overlapped(pipeline, batches[:2], 1)  # warm-up: first search/upsert pays one-time costs
        runs: dict[int, list[float]] = {n: [] for n in in_flights}
        for r in range(rounds):
            for n in in_flights if r % 2 == 0 else list(reversed(in_flights)):
                runs[n].append(round(images / await run_overlapped(pipeline, batches, n), 1))
        return runs

    runs = asyncio.run(measure())
    lanes = pipeline.config.inference_lanes
    models_rate = models_only_rate(pipeline.embedder, pipeline.quality, pil, batch_size, lanes)
    medians = {n: statistics.median(v) for n, v in runs.items()}
    base = medians.get(1) or medians[min(medians)]
    return OverlapReport(
        images_per_run=images,
        batch_size=batch_size,
        rounds=rounds,
        models_only_images_per_s=round(models_rate, 1),
        images_per_s=medians,
        runs=runs,
        vs_one_in_flight={n: round(v / base, 3) for n, v in medians.items()},
        paired_vs_one_in_flight=_paired(runs),
        vs_models={n: round(v / models_rate, 3) for n, v in medians.items()},
    )
