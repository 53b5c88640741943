"""Pipeline throughput against model-only throughput, measured in one run on the same images.

The ratio says what intake, Milvus search and upsert cost on top of the model.
"""

from __future__ import annotations

import asyncio
import base64
import io
import time
from dataclasses import asdict, dataclass

from PIL import Image

from processors.pipeline import EnrichmentPipeline
from processors.requests import ImageRequest
from processors.samples import fashion_mnist_samples


@dataclass(frozen=True)
class PipelineReport:
    images: int
    batch_size: int
    model_only_images_per_s: float
    pipeline_images_per_s: float
    pipeline_vs_model: float
    stage_ms_per_batch: dict[str, float]

    def as_dict(self) -> dict:
        return asdict(self)


def _jpeg_b64(pixels) -> str:  # noqa: ANN001 - numpy array
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=90)
    return base64.b64encode(buf.getvalue()).decode()


async def _run(
    pipeline: EnrichmentPipeline, batches: list[list[ImageRequest]]
) -> tuple[float, dict[str, float]]:
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


def run_pipeline_benchmark(
    pipeline: EnrichmentPipeline, images: int = 1024, batch_size: int = 64
) -> PipelineReport:
    size = 64
    samples = fashion_mnist_samples("test", images + batch_size, size, "seller", seed=7)
    requests = [
        ImageRequest(
            event_id=f"bench-{i}", product_id=f"bench-{pid}", seller_id="bench", image_b64=_jpeg_b64(px)
        )
        for i, (pid, px) in enumerate(zip(samples.product_ids, samples.pixels, strict=True))
    ]
    batches = [requests[i : i + batch_size] for i in range(0, len(requests), batch_size)]
    elapsed, stages = asyncio.run(_run(pipeline, batches))
    n_pipeline = sum(len(b) for b in batches[1:])

    embedder = pipeline.embedder
    pil = [Image.fromarray(px) for px in samples.pixels[batch_size:]]
    start = time.perf_counter()
    for i in range(0, len(pil), batch_size):
        embedder.embed(pil[i : i + batch_size])
    model_s = time.perf_counter() - start
    model_rate = len(pil) / model_s
    pipe_rate = n_pipeline / elapsed
    return PipelineReport(
        images=n_pipeline,
        batch_size=batch_size,
        model_only_images_per_s=round(model_rate, 1),
        pipeline_images_per_s=round(pipe_rate, 1),
        pipeline_vs_model=round(pipe_rate / model_rate, 3),
        stage_ms_per_batch=stages,
    )
