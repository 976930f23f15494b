"""Assembling the edges from settings: the classifier, templates, store, mailbox, service.
The CLI calls these; nothing here decides anything."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

from classifier.predict import ModelClassifier
from daemon import config
from daemon.catalogue import load as load_catalogue
from daemon.decide import Policy
from daemon.mailbox import ImapAccount, ImapMailbox
from daemon.pipeline import Context
from daemon.render import Seller
from daemon.service import Service
from daemon.store import Store
from daemon.templating import environment


def classifier_for(s: config.Settings) -> ModelClassifier:
    return ModelClassifier.from_file(s.path(s.model.path) if s.model.path else None)


def context(s: config.Settings, store: Store | None = None,
            classifier: ModelClassifier | None = None) -> Context:
    model = classifier or classifier_for(s)
    listings = load_catalogue(s.path(s.catalogue.path)) if s.catalogue.path else ()
    ctx = Context(
        classifier=model,
        env=environment(s.path(s.templates.path) if s.templates.path else None),
        policy=Policy(return_window_days=s.policy.return_window_days,
                      review_below=s.policy.review_below,
                      complaint_threshold=model.complaint_threshold),
        seller=Seller(s.seller.shop_name, s.seller.person_name, s.seller.from_address,
                      s.policy.return_window_days, s.seller.shop_name_latin, s.seller.person_name_latin),
        listings=listings,
    )
    if store is not None:
        from dataclasses import replace

        ctx = replace(ctx, order_date_of=store.order_date, complaints_of=store.complaints)
    return ctx


def account(s: config.Settings) -> ImapAccount:
    config.require_imap(s)
    from daemon import oauth

    token = oauth.token_source(s)  # None for auth = "password"
    return ImapAccount(
        host=s.imap.host, port=s.imap.port, username=s.imap.username,
        password=config.password(s) if token is None else "", security=s.imap.security,
        verify=s.imap.verify_certificate,
        ca_file=str(s.path(s.imap.ca_file)) if s.imap.ca_file else "",
        timeout=s.imap.timeout_seconds, folder=s.imap.folder,
        drafts_folder=s.imap.drafts_folder, idle_seconds=s.imap.idle_seconds,
        poll_seconds=s.imap.poll_seconds, auth=s.imap.auth, token=token,
    )


def store(s: config.Settings) -> Store:
    state_dir = os.environ.get("STATE_DIRECTORY")  # systemd's StateDirectory=
    path = Path(s.state.path)
    if state_dir and not path.is_absolute():
        return Store(Path(state_dir) / path)
    return Store(s.path(s.state.path))


def service(s: config.Settings, since: date | None = None) -> Service:
    acct = account(s)
    st = store(s)
    if since is None and s.service.since:
        since = date.fromisoformat(s.service.since)
    # The model is loaded once here so that a corrupt file stops the start with a clear error.
    model = classifier_for(s)
    first = [model]

    def build() -> Context:
        # SIGHUP: re-read the config file, templates and model
        current = config.load(s.source) if s.source else s
        m = first.pop() if first else classifier_for(current)
        return context(current, st, m)

    metrics = None
    if s.service.metrics_port:
        from daemon.metrics import Metrics

        metrics = Metrics.create()
        metrics.serve(s.service.metrics_port)
    return Service(connect=lambda: ImapMailbox(acct), store=st, context=build,
                   folder=s.imap.folder, since=since, backoff_max=s.service.backoff_max_seconds,
                   metrics=metrics)
