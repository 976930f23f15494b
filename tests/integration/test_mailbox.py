"""The IMAP edge on a real Dovecot: a huge mail read only as far as parse() reads it; many
drafts by MULTIAPPEND (100 to a command), in order, with their flags; drafts found again by key (long keys
too); a batch over quota filed one mail at a time."""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import default
from pathlib import Path

from daemon.mailbox import ImapAccount, ImapMailbox
from daemon.parse import MAX_RAW, parse
from tests.dovecot import Account, Dovecot
from tests.integration.test_daemon import COMPLAINT, drafts, madoguchi, write_config
from tests.mails import amazon


def open_box(acct: Account) -> ImapMailbox:
    return ImapMailbox(ImapAccount(acct.host, acct.port, acct.username, acct.password, security="none"))


def draft(key: str, subject: str) -> EmailMessage:
    msg = EmailMessage(policy=default)
    msg["Subject"] = subject
    msg["X-Madoguchi-Key"] = key
    msg.set_content("本文\n")
    return msg


def test_a_huge_mail_is_read_only_as_far_as_parse_reads(dovecot: Dovecot, account: Account) -> None:
    photos = b"\r\n".join([b"x" * 76] * (MAX_RAW // 78 + 20000))
    big = amazon(COMPLAINT, msgid="<big@example.test>").replace(b"[commMgrTok", photos + b"\r\n[commMgrTok")
    small = amazon(COMPLAINT, msgid="<small@example.test>")
    dovecot.deliver(account.username, big)
    dovecot.deliver(account.username, small)
    box = open_box(account)
    try:
        uids = box.uids_from(1)
        sizes = box.sizes(uids)  # as the server counts them: it may end the mail with a CRLF
        assert sizes[uids[0]] >= len(big) and sizes[uids[1]] < 1000
        got = dict(box.fetch(uids))
    finally:
        box.close()
    def lf(raw: bytes) -> bytes:  # the server stores a folded header's bare LF as CRLF
        return raw.replace(b"\r\n", b"\n")

    assert len(got[uids[0]]) == MAX_RAW + 1 and lf(big).startswith(lf(got[uids[0]]))
    assert lf(got[uids[1]]).rstrip() == lf(small).rstrip()
    n = parse(got[uids[0]])
    assert n.truncated and n.order_id == "249-3029688-3087868" and "7巻" in n.buyer_text


def test_many_drafts_appended_together_in_order_and_found_again_by_key(account: Account) -> None:
    box = open_box(account)
    try:
        assert b"MULTIAPPEND" in box.writer.capabilities()
        long_key = "reply:<" + "k" * 200 + "@example.test>"  # written folded, as RFC 2047 words
        keys = [f"reply:<m{i}@example.test>" for i in range(120)] + [long_key]
        box.append_drafts([(draft(k, f"件名 {i}"), i % 2 == 0) for i, k in enumerate(keys)])
        found = box.drafts_by_key([*keys, "reply:<absent@example.test>", "reply:<m1@example.test"])
        assert sorted(found) == sorted(keys)  # not the absent key, nor the prefix of one
        assert all(len(uids) == 1 for uids in found.values())
        by_uid = sorted((uids[0], k) for k, uids in found.items())
        assert [k for _, k in by_uid] == keys  # filed in the order given
        flags = box.writer.fetch([by_uid[0][0], by_uid[1][0]], ["FLAGS"])
        assert b"\\Flagged" in flags[by_uid[0][0]][b"FLAGS"] and b"\\Draft" in flags[by_uid[0][0]][b"FLAGS"]
        assert b"\\Flagged" not in flags[by_uid[1][0]][b"FLAGS"]
        assert box.drafts_by_key([]) == {}
    finally:
        box.close()


def test_a_batch_over_quota_is_filed_one_mail_at_a_time(dovecot: Dovecot, tmp_path: Path) -> None:
    # room for 4 mails: the 2 complaints in INBOX, and the 2 drafts (reply, note) of one of them
    acct = dovecot.add_user("quota-user", "pw-quota", max_messages=4)
    cfg = write_config(tmp_path, acct)
    assert madoguchi("once", "-c", str(cfg)).returncode == 0
    dovecot.deliver(acct.username, amazon(COMPLAINT, msgid="<q1@example.test>"))
    dovecot.deliver(acct.username, amazon("5巻の表紙が破れていました。", msgid="<q2@example.test>",
                                          order="249-1111111-2222222"))
    run = madoguchi("once", "-c", str(cfg))
    assert run.returncode == 1 and "OVERQUOTA" in run.stderr, run.stderr  # a failed mail: not 0
    heads = [d[b"BODY[HEADER]"].decode() for d in drafts(acct)]
    sources = sorted(h.split("X-Madoguchi-Source: ")[1].split()[0] for h in heads)
    assert len(sources) == 2 and sources[0] == sources[1]  # one mail's reply and note, whole
    status = madoguchi("status", "-c", str(cfg))
    assert "handled: 1" in status.stdout and "failed: 1" in status.stdout, status.stdout
    assert "quota" in status.stdout.lower(), status.stdout
    assert madoguchi("once", "-c", str(cfg)).returncode == 1  # the failed one tried again: still refused
    assert len(drafts(acct)) == 2
