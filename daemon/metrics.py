"""Optional Prometheus metrics on 127.0.0.1 (never another address): mails handled, drafts
filed by priority, failures, reconnects, arrival → draft seconds."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server


@dataclass
class Metrics:
    registry: CollectorRegistry
    handled: Counter
    drafts: Counter
    failures: Counter
    reconnects: Counter
    latency: Histogram

    @classmethod
    def create(cls) -> Metrics:
        r = CollectorRegistry()
        return cls(
            registry=r,
            handled=Counter("madoguchi_mails_handled", "Mails handled", ["intent"], registry=r),
            drafts=Counter("madoguchi_drafts_filed", "Drafts filed", ["priority"], registry=r),
            failures=Counter("madoguchi_failures", "Mails that could not be handled", registry=r),
            reconnects=Counter("madoguchi_reconnects", "Reconnections to the IMAP server", registry=r),
            latency=Histogram("madoguchi_arrival_to_draft_seconds",
                              "From the server's notice of new mail (IDLE/poll) to its drafts filed",
                              buckets=(0.1, 0.25, 0.5, 0.75, 1, 2, 5, 10, 30, 60, 300), registry=r),
        )

    def serve(self, port: int) -> None:
        start_http_server(port, addr="127.0.0.1", registry=self.registry)
