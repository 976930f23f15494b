"""When was it bought? Order dates read from the buyer's own words, relative to the mail's Date.

先月の頭, 購入から40日, 1か月以上前, 10月1日に購入, "ordered on October 1", "over a month ago".
Pure: the mail's date is passed in. Returns the earliest purchase date the words imply, because
the window question is "could it be older than N days?" and a buyer saying "over a month ago"
means at least that.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, timedelta

_KANJI_DIGITS = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9,
                 "十": 10, "半": 0}
_BUY = (r"(?:購入|注文|落札|買っ|買い|購入し|届い|受け取|受取"
        r"|ordered|bought|purchased|received)")
_MONTHS_EN = {m: i for i, m in enumerate(
    ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"], 1)}


def _number(token: str) -> int | None:
    if token.isdigit():
        return int(token)
    if token == "十":
        return 10
    if len(token) == 2 and token[0] == "十":
        return 10 + _KANJI_DIGITS.get(token[1], 0)
    if len(token) >= 2 and token[1] == "十":
        return _KANJI_DIGITS.get(token[0], 0) * 10 + (_KANJI_DIGITS.get(token[2], 0)
                                                     if len(token) > 2 else 0)
    return _KANJI_DIGITS.get(token)


_NUM = r"(\d{1,3}|[一二三四五六七八九十]{1,3})"
_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p, re.I), unit)
    for p, unit in (
        (rf"{_BUY}.{{0,6}}?(?:から|して)\s*{_NUM}\s*日", "days"),
        (rf"{_NUM}\s*日\s*(?:以上)?\s*(?:前|ほど前|くらい前|ぐらい前)", "days"),
        (rf"{_NUM}\s*(?:週間|週)\s*(?:以上)?\s*(?:前|経)", "weeks"),
        (rf"{_BUY}.{{0,6}}?(?:から|して)\s*{_NUM}\s*(?:週間|週)", "weeks"),
        (rf"{_NUM}\s*(?:か|ヶ|ケ|カ|ヵ|箇)?\s*月\s*(?:以上|ちょっと|ちょい|くらい|ほど|ぐらい)?\s*(?:前|経|たっ|過ぎ)",
         "months"),
        (rf"{_BUY}.{{0,6}}?(?:から|して)\s*{_NUM}\s*(?:か|ヶ|ケ|カ|ヵ|箇)\s*月", "months"),
        (r"(\d{1,3})\s*days?\s*(?:ago|since)", "days"),
        (r"(\d{1,2})\s*weeks?\s*(?:ago|since)", "weeks"),
        (r"(\d{1,2})\s*months?\s*ago", "months"),
    )
)


def purchase_date_from_text(text: str, mail_date: date) -> tuple[date, str] | None:
    """(estimated purchase date, the words that said so), or None."""
    t = unicodedata.normalize("NFKC", text)[:5000]
    found: list[tuple[date, str]] = []
    for pattern, unit in _RULES:
        for m in pattern.finditer(t):
            n = _number(m.group(1))
            if n is None or n == 0:
                continue
            days = {"days": n, "weeks": 7 * n, "months": 30 * n}[unit]
            found.append((mail_date - timedelta(days=days), m.group(0)))
    for m in re.finditer(rf"(\d{{1,2}})\s*月\s*(\d{{1,2}})\s*日\s*(?:に|の)?\s*.{{0,4}}{_BUY}", t):
        d = _month_day(int(m.group(1)), int(m.group(2)), mail_date)
        if d:
            found.append((d, m.group(0)))
    for m in re.finditer(r"(?:ordered|bought|purchased)\s+(?:it\s+)?on\s+([A-Za-z]+)\s+(\d{1,2})", t,
                         re.I):
        month = _MONTHS_EN.get(m.group(1).lower())
        d = _month_day(month, int(m.group(2)), mail_date) if month else None
        if d:
            found.append((d, m.group(0)))
    for words, days_back in _FIXED:
        for m in re.finditer(words, t, re.I):
            found.append((_fixed(m.group(0), mail_date, days_back), m.group(0)))
    if not found:
        return None
    return min(found)


_FIXED: tuple[tuple[str, int], ...] = (
    (r"先々月", 60), (r"先月の?(?:頭|初め|はじめ|上旬|始め|最初)", -1), (r"先月の?(?:中旬|半ば)", -2),
    (r"先月の?(?:末|下旬|終わり)", -3), (r"(?:一|1)\s*(?:か|ヶ|ケ|カ)?月\s*以上", 31),
    (r"ひと月以上", 31), (r"半年", 182), (r"去年|昨年", 365), (r"over a month|more than a month", 31),
    (r"last month", -2),
)


def _fixed(words: str, mail_date: date, days_back: int) -> date:
    if days_back >= 0:
        return mail_date - timedelta(days=days_back)
    first_this = mail_date.replace(day=1)
    last_prev = first_this - timedelta(days=1)
    day = {-1: 1, -2: 15, -3: last_prev.day}[days_back]
    return last_prev.replace(day=min(day, last_prev.day))


def _month_day(month: int, day: int, mail_date: date) -> date | None:
    try:
        d = date(mail_date.year, month, day)
    except ValueError:
        return None
    return d if d <= mail_date else d.replace(year=d.year - 1)
