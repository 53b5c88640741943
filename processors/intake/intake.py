"""Image intake facade: one event's ``image_b64`` / ``image_url`` -> a decoded RGB image.

CPU work (base64, decoding) runs in threads behind a semaphore so the event loop stays free,
and each decode reserves its estimated pixel memory from a byte budget first
(``IntakeConfig.max_decoding_bytes``), so a burst of large images cannot exhaust memory: a
decode that does not fit waits for room; none is dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx

from processors.errors import ProcessingError
from processors.intake import codes as c
from processors.intake.budget import ByteBudget
from processors.intake.config import IntakeConfig
from processors.intake.decode import DecodedImage, OpenedImage, finish_decode, open_image
from processors.intake.fetch import Fetcher
from processors.intake.pinning import PinnedTransport
from processors.intake.sources import b64_payload, decode_b64, read_file_capped
from processors.intake.url_policy import Resolver, UrlPolicy


class ImageIntake:
    """Loads seller images under the limits of an :class:`IntakeConfig`.

    ``resolver`` answers the URL policy's DNS lookups (default: the system's); the client built
    here connects only to the addresses the policy vetted. A borrowed ``http_client`` should use a
    :class:`PinnedTransport` to keep that guarantee.
    """

    def __init__(
        self, config: IntakeConfig, http_client: httpx.AsyncClient | None = None, resolver: Resolver | None = None
    ) -> None:
        self._config = config
        self._owns_client = http_client is None
        self._client = http_client or httpx.AsyncClient(
            transport=PinnedTransport(),
            follow_redirects=False,
            trust_env=False,  # no proxies from the environment: they would bypass the host checks
            timeout=httpx.Timeout(config.fetch_timeout_s),
        )
        self._policy = UrlPolicy(config, resolver)
        self._fetcher = Fetcher(config, self._client, self._policy)
        self._decode_slots = asyncio.Semaphore(config.max_concurrent_decodes)
        self._decode_bytes = ByteBudget(config.max_decoding_bytes)

    @property
    def config(self) -> IntakeConfig:
        return self._config

    async def load(self, *, image_b64: str | None, image_url: str | None) -> DecodedImage:
        """Load exactly one of the two sources or raise ``InputRejected``."""
        if image_b64 is None and image_url is None:
            c.reject(c.IMAGE_MISSING, "event carries neither image_b64 nor image_url")
        if image_b64 is not None and image_url is not None:
            c.reject(c.IMAGE_AMBIGUOUS, "event carries both image_b64 and image_url")
        if image_b64 is not None:
            text = b64_payload(image_b64, self._config.max_bytes)
            return await self._decode(self._open_b64_image, text)
        assert image_url is not None
        target = await self._policy.check(image_url)
        if isinstance(target, Path):
            data = await asyncio.to_thread(read_file_capped, target, self._config.max_bytes)
        else:
            data = await self._fetcher.fetch(target)
        return await self._decode(open_image, data, self._config)

    async def load_many(
        self, refs: Sequence[tuple[str | None, str | None]], concurrency: int = 16
    ) -> list[DecodedImage | ProcessingError]:
        """Load ``(image_b64, image_url)`` pairs in order; a bad item yields its error, never raises."""
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        gate = asyncio.Semaphore(concurrency)

        async def one(b64: str | None, url: str | None) -> DecodedImage | ProcessingError:
            async with gate:
                try:
                    return await self.load(image_b64=b64, image_url=url)
                except ProcessingError as exc:
                    return exc
                except Exception as exc:  # a bug must not sink the rest of the batch
                    return c.rejected(c.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")

        return list(await asyncio.gather(*(one(b64, url) for b64, url in refs)))

    async def aclose(self) -> None:
        """Close the HTTP client if this instance created it; a borrowed client stays open."""
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> ImageIntake:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def _open_b64_image(self, text: str) -> OpenedImage:
        return open_image(decode_b64(text, self._config.max_bytes), self._config)

    async def _decode(self, opener: Callable[..., OpenedImage], *args: object) -> DecodedImage:
        """Open the header (cheap), then decode once the pixels' estimated memory fits the budget."""
        async with self._decode_slots:
            opened = await asyncio.to_thread(opener, *args)
        async with self._decode_bytes.hold(opened.peak_bytes), self._decode_slots:
            return await asyncio.to_thread(finish_decode, opened, self._config)
