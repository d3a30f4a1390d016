"""The reviewer's client calls (issue 12), over a `QueueClient` (its auth, TLS, errors)."""

from __future__ import annotations

from api.client import QueueClient
from api.quality_models import Final, FinalIn, ReviewList


class ReviewClient:
    def __init__(self, queue: QueueClient) -> None:
        self.queue = queue

    def reviews(self, limit: int = 50) -> ReviewList:
        resp = self.queue._request("GET", "/v1/reviews", params={"limit": limit})
        return self.queue._parse(ReviewList, resp)

    def audio(self, clip_id: str) -> bytes:
        return self.queue.download_audio(f"/v1/reviews/{clip_id}/audio")

    def decide(self, clip_id: str, final: FinalIn) -> Final:
        resp = self.queue._request("POST", f"/v1/reviews/{clip_id}/final", body=final)
        return self.queue._parse(Final, resp)
