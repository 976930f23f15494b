"""Bytes to text for Japanese mail: charsets, mislabels, RFC 2047 words and HTML.

Japanese mail is often mislabelled: Shift_JIS labels hide CP932 (NEC/IBM extensions such as ①
and ㈱), ISO-2022-JP labels hide the same extensions or even 8-bit Shift_JIS bodies, and
UTF-8 arrives labelled as anything. The rules, in order:

1. valid UTF-8 with non-ASCII bytes is UTF-8, whatever the label says (accidental validity of
   another Japanese encoding as UTF-8 is vanishingly rare);
2. the declared charset, mapped to its superset (Shift_JIS → CP932, EUC-JP → EUC-JIS-2004),
   decoded strictly;
3. charset-normalizer's best guess among what remains;
4. the declared charset with replacement characters, as a last resort that loses nothing else.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import quopri
import re

import charset_normalizer

_SUPERSETS = {
    "shift_jis": "cp932", "shift-jis": "cp932", "sjis": "cp932", "x-sjis": "cp932",
    "s-jis": "cp932", "shiftjis": "cp932", "ms_kanji": "cp932", "csshiftjis": "cp932",
    "windows-31j": "cp932", "x-ms-cp932": "cp932", "cp932": "cp932",
    "euc-jp": "euc_jis_2004", "eucjp": "euc_jis_2004", "x-euc-jp": "euc_jis_2004",
    "cseucpkdfmtjapanese": "euc_jis_2004",
    "iso-2022-jp": "iso-2022-jp", "iso2022jp": "iso-2022-jp", "csiso2022jp": "iso-2022-jp",
    "iso-2022-jp-1": "iso-2022-jp", "iso-2022-jp-2": "iso-2022-jp", "iso-2022-jp-3": "iso-2022-jp",
    "iso-2022-jp-ms": "iso-2022-jp", "cp50220": "iso-2022-jp", "cp50221": "iso-2022-jp",
    "gb2312": "gb18030", "gbk": "gb18030", "ks_c_5601-1987": "cp949", "euc-kr": "cp949",
    "us-ascii": "ascii", "ascii": "ascii", "iso-8859-1": "cp1252", "latin1": "cp1252",
    "unicode-1-1-utf-7": "utf-7", "utf8": "utf-8",
}

_JAPANESE_GUESSES = ("utf_8", "cp932", "euc_jis_2004", "iso2022_jp")


def decode_iso2022jp(data: bytes) -> str:
    """ISO-2022-JP with the extensions real mailers emit (CP50220/50221 style).

    Each two-byte JIS X 0208 code is moved to its Shift_JIS position and decoded as CP932, so
    NEC special characters (①, ㈱, ㍻) and IBM extensions come out right instead of failing
    the strict codec. Half-width katakana (ESC ( I, or SO/SI) are handled too.
    Raises UnicodeDecodeError on bytes that are not ISO-2022-JP.
    """
    out: list[str] = []
    mode = "ascii"
    i, n = 0, len(data)
    while i < n:
        b = data[i]
        if b == 0x1B:
            seq = data[i + 1 : i + 3]
            if seq in (b"$B", b"$@"):
                mode, i = "jis", i + 3
            elif seq[:2] == b"$(" and data[i + 3 : i + 4] in (b"D", b"Q", b"O"):
                mode, i = "jis", i + 4  # JIS X 0212 / 0213: decoded as JIS X 0208 codes
            elif seq in (b"(B", b"(J"):
                mode, i = "ascii", i + 3
            elif seq == b"(I":
                mode, i = "kana", i + 3
            else:
                raise UnicodeDecodeError("iso-2022-jp", data, i, i + 1, "unknown escape")
            continue
        if b == 0x0E:
            mode, i = "kana", i + 1
            continue
        if b == 0x0F:
            mode, i = "ascii", i + 1
            continue
        if b >= 0x80:
            raise UnicodeDecodeError("iso-2022-jp", data, i, i + 1, "8-bit byte")
        if mode == "jis" and b not in (0x0A, 0x0D):
            if i + 1 >= n:
                raise UnicodeDecodeError("iso-2022-jp", data, i, n, "truncated character")
            out.append(_jis_to_cp932(b, data[i + 1], data, i))
            i += 2
        elif mode == "kana" and 0x21 <= b <= 0x5F:
            out.append(bytes([b + 0x80]).decode("cp932"))
            i += 1
        else:
            out.append(chr(b))
            i += 1
    return "".join(out)


def _jis_to_cp932(j1: int, j2: int, data: bytes, pos: int) -> str:
    if not (0x21 <= j1 <= 0x7E and 0x21 <= j2 <= 0x7E):
        raise UnicodeDecodeError("iso-2022-jp", data, pos, pos + 2, "not a JIS code")
    s1 = ((j1 + 1) >> 1) + (0x70 if j1 <= 0x5E else 0xB0)
    s2 = j2 + (0x1F if j1 % 2 else 0x7E)
    if j1 % 2 and s2 >= 0x7F:
        s2 += 1
    try:
        return bytes([s1, s2]).decode("cp932")
    except UnicodeDecodeError:
        raise UnicodeDecodeError("iso-2022-jp", data, pos, pos + 2, "unmapped JIS code") from None


def normalise_charset(label: str | None) -> str | None:
    if not label:
        return None
    label = label.strip().strip('"').lower()
    name = _SUPERSETS.get(label, label)
    if name == "iso-2022-jp":
        return name
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def _strict(data: bytes, charset: str) -> str:
    if charset == "iso-2022-jp":
        return decode_iso2022jp(data)
    return data.decode(charset)


def decode_bytes(data: bytes, declared: str | None = None) -> str:
    """Text of `data`, following the module's rules; never raises."""
    if not data:
        return ""
    label = normalise_charset(declared)
    if data.isascii():
        if b"\x1b" in data:
            try:
                return decode_iso2022jp(data)
            except UnicodeDecodeError:
                pass
        if label == "utf-7":
            try:
                return data.decode("utf-7")
            except UnicodeDecodeError:
                pass
        return data.decode("ascii")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if label and label not in ("ascii", "utf-8", "iso-2022-jp"):
        try:
            text = data.decode(label)
            if not _looks_misread(text, label):
                return text
        except UnicodeDecodeError:
            pass
    for guess in _guesses(data):
        try:
            return data.decode(guess)
        except UnicodeDecodeError:
            continue
    return data.decode(label if label and label != "iso-2022-jp" else "cp932", errors="replace")


def _looks_misread(text: str, label: str) -> bool:
    """A single-byte label over Japanese bytes decodes 'fine' into Latin soup: detect that by
    checking whether a Japanese reading of the same bytes is clearly Japanese."""
    if label not in _SINGLE_BYTE:
        return False
    data = text.encode(label, errors="ignore")
    for guess in ("cp932", "euc_jis_2004"):
        try:
            if japanese_ratio(data.decode(guess)) > 0.3:
                return True
        except UnicodeDecodeError:
            continue
    return False


_SINGLE_BYTE = {"cp1252", "iso8859-15", "iso8859-2", "cp1251", "koi8-r", "iso8859-5", "cp1250"}
_JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff\uff66-\uff9f]")


def japanese_ratio(text: str) -> float:
    """Share of kana and kanji among the non-ASCII characters of `text`."""
    non_ascii = sum(1 for c in text if ord(c) > 0x7F)
    if not non_ascii:
        return 0.0
    return len(_JAPANESE.findall(text)) / non_ascii


def _guesses(data: bytes) -> list[str]:
    """Encodings to try, best first. EUC-JP bytes often decode 'fine' as CP932 into half-width
    katakana soup (and the reverse), so strict candidates are ranked by how much full-width
    kana and kanji they produce."""
    scored = []
    for name in _JAPANESE_GUESSES[1:]:
        try:
            text = data.decode(name)
        except UnicodeDecodeError:
            continue
        scored.append((len(_FULL_WIDTH.findall(text)) / max(len(text), 1), name))
    names = [name for _, name in sorted(scored, reverse=True)]
    best = charset_normalizer.from_bytes(data[:65536]).best()
    if best is not None and best.encoding not in names:
        names.append(best.encoding)
    return names


_FULL_WIDTH = re.compile(r"[\u3041-\u30ff\u4e00-\u9fff]")


_ENCODED_WORD = re.compile(
    r"=\?([A-Za-z0-9_.:*-]{1,40})\?([bBqQ])\?([^?\s]{0,2000})\?=", re.ASCII
)
_BETWEEN_WORDS = re.compile(r"\?=[ \t\r\n]+=\?")


def decode_header(value: str | bytes | None) -> str:
    """An RFC 2047 header value (or raw 8-bit one) as one line of text.

    Adjacent encoded words of one charset are joined before decoding, because mailers split
    multi-byte characters across words. CR, LF and other controls become spaces: a decoded
    header is data and must never break into a new header line.
    """
    if value is None:
        return ""
    raw = value if isinstance(value, bytes) else value.encode("utf-8", "surrogateescape")
    if not raw.isascii() and b"=?" not in raw:
        return _one_line(decode_bytes(raw))
    text = raw.decode("ascii", "surrogateescape")
    text = _BETWEEN_WORDS.sub("?==?", text)
    parts: list[str] = []
    pending: bytes = b""
    pending_cs: str | None = None
    pos = 0
    for m in _ENCODED_WORD.finditer(text):
        if m.start() > pos:
            if pending:
                parts.append(decode_bytes(pending, pending_cs))
                pending = b""
            parts.append(_plain(text[pos : m.start()]))
        charset = m.group(1).split("*")[0]  # RFC 2231 language suffix
        payload = _word_bytes(m.group(2), m.group(3))
        if pending and charset.lower() != (pending_cs or "").lower():
            parts.append(decode_bytes(pending, pending_cs))
            pending = b""
        pending += payload
        pending_cs = charset
        pos = m.end()
    if pending:
        parts.append(decode_bytes(pending, pending_cs))
    if pos < len(text):
        parts.append(_plain(text[pos:]))
    return _one_line("".join(parts))


def _plain(segment: str) -> str:
    raw = segment.encode("ascii", "surrogateescape")
    return decode_bytes(raw)


def _word_bytes(encoding: str, payload: str) -> bytes:
    if encoding in "bB":
        cleaned = re.sub(r"[^A-Za-z0-9+/]", "", payload)
        cleaned += "=" * (-len(cleaned) % 4)
        try:
            return base64.b64decode(cleaned)
        except (binascii.Error, ValueError):
            return payload.encode("ascii", "replace")
    return quopri.decodestring(payload.replace("_", " ").encode("ascii", "replace"), header=True)


_CONTROLS = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\u0085]+")


def _one_line(text: str) -> str:
    return _CONTROLS.sub(" ", text).strip()


def html_to_text(html: str) -> str:
    """Visible text of an HTML body; elements hidden from the reader are dropped, because
    hidden text is where injected instructions and tracking junk live."""
    from inscriptis import get_text
    from lxml import etree
    from lxml import html as lxml_html

    try:
        root = lxml_html.document_fromstring(html)
    except (etree.ParserError, ValueError):
        return ""
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        style = (el.get("style") or "").replace(" ", "").lower()
        if (
            el.tag in ("script", "style", "head", "template", "noscript", "title")
            or el.get("hidden") is not None
            or el.get("aria-hidden") == "true"
            or "display:none" in style
            or "visibility:hidden" in style
            or re.search(r"font-size:0(?![.\d]*[1-9])", style)
            or "opacity:0;" in style + ";"
        ):
            el.drop_tree() if el.getparent() is not None else el.clear()
    return get_text(lxml_html.tostring(root, encoding="unicode"))
