"""Pipeline throughput against model-only throughput, measured in one run on the same images.

Two baselines: the embedder alone, and every model the pipeline runs (embedder + quality
scorer, exactly as ``run_models`` calls them). The second ratio is what intake, Milvus search
and upsert cost on top of the models; the first also counts the quality models as cost.
"""

from __future__ import annotations

import asyncio
import base64
import io
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

from PIL import Image

from processors.embedding import TorchEmbedder
from processors.inference import QualityScorer, run_models
from processors.pipeline import EnrichmentPipeline
from processors.requests import ImageRequest
from processors.samples import fashion_mnist_samples


@dataclass(frozen=True)
class PipelineReport:
    images: int
    batch_size: int
    embedder_only_images_per_s: float
    models_only_images_per_s: float
    pipeline_images_per_s: float
    pipeline_vs_embedder: float
    pipeline_vs_models: float
    stage_ms_per_batch: dict[str, float]

    def as_dict(self) -> dict:
        return asdict(self)


def _jpeg_b64(pixels) -> str:  # noqa: ANN001 - numpy array
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=90)
    return base64.b64encode(buf.getvalue()).decode()


async def _run(pipeline: EnrichmentPipeline, batches: list[list[ImageRequest]]) -> tuple[float, dict[str, float]]:
    await pipeline.start()
    await pipeline.process_batch(batches[0])  # warm-up: first search/upsert pays one-time costs
    sums: dict[str, float] = {}
    start = time.perf_counter()
    for batch in batches[1:]:
        outcomes = await pipeline.process_batch(batch)
        for stage, ms in outcomes[0].timings_ms.items():  # type: ignore[union-attr]
            sums[stage] = sums.get(stage, 0.0) + ms
    elapsed = time.perf_counter() - start
    return elapsed, {k: round(v / (len(batches) - 1), 1) for k, v in sums.items()}


def models_only_rate(
    embedder: TorchEmbedder,
    quality: QualityScorer | None,
    images: Sequence[Image.Image],
    batch_size: int,
    lanes: int = 1,
) -> float:
    """Images/s of every model the pipeline runs (``run_models``, as the worker calls it), nothing else.

    The batches run on ``lanes`` dedicated threads at once, as the pipeline's inference lanes run
    them: on the 2-core machine under load, the same calls from a process's main thread measured
    up to 7x slower, back to back, which made the pipeline look faster than its own models.
    """
    chunks = [images[i : i + batch_size] for i in range(0, len(images), batch_size)]

    def one(chunk: Sequence[Image.Image]) -> None:
        run_models(embedder, quality, chunk, [None] * len(chunk))

    with ThreadPoolExecutor(lanes, thread_name_prefix="models-only") as executor:
        start = time.perf_counter()
        list(executor.map(one, chunks))
        return len(images) / (time.perf_counter() - start)


def run_pipeline_benchmark(pipeline: EnrichmentPipeline, images: int = 1024, batch_size: int = 64) -> PipelineReport:
    size = 64
    samples = fashion_mnist_samples("test", images + batch_size, size, "seller", seed=7)
    requests = [
        ImageRequest(event_id=f"bench-{i}", product_id=f"bench-{pid}", seller_id="bench", image_b64=_jpeg_b64(px))
        for i, (pid, px) in enumerate(zip(samples.product_ids, samples.pixels, strict=True))
    ]
    batches = [requests[i : i + batch_size] for i in range(0, len(requests), batch_size)]
    elapsed, stages = asyncio.run(_run(pipeline, batches))
    n_pipeline = sum(len(b) for b in batches[1:])

    pil = [Image.fromarray(px) for px in samples.pixels[batch_size:]]
    chunks = [pil[i : i + batch_size] for i in range(0, len(pil), batch_size)]
    start = time.perf_counter()
    for chunk in chunks:
        pipeline.embedder.embed(chunk)
    embedder_rate = len(pil) / (time.perf_counter() - start)
    lanes = pipeline.config.inference_lanes
    models_rate = models_only_rate(pipeline.embedder, pipeline.quality, pil, batch_size, lanes)
    pipe_rate = n_pipeline / elapsed
    return PipelineReport(
        images=n_pipeline,
        batch_size=batch_size,
        embedder_only_images_per_s=round(embedder_rate, 1),
        models_only_images_per_s=round(models_rate, 1),
        pipeline_images_per_s=round(pipe_rate, 1),
        pipeline_vs_embedder=round(pipe_rate / embedder_rate, 3),
        pipeline_vs_models=round(pipe_rate / models_rate, 3),
        stage_ms_per_batch=stages,
    )
