"""Text from outside (a record's names, a feedback reason) made harmless for the reader it is written to.

One function per reader, each used wherever that reader is written to:

- ``plain_text``: plain text (a card's ``summary``, a suggestion's label, a terminal): control characters
  (C0, DEL, C1 with ESC and CSI) and the bidirectional overrides and isolates (U+202A-U+202E,
  U+2066-U+2069), which could move what a reader sees, are taken out; line breaks and tabs become spaces, so a
  value stays on its line; a ``<`` that would open an HTML tag becomes ``\u2039`` (an EHR that wrongly renders
  a summary as HTML shows ``\u2039img ...>`` as text).
- ``markdown_text``: GitHub-flavored Markdown (a card's ``detail``): the text on one line, with every
  character that could start markup escaped: ``\\ ` * _ [ ] | ~`` with a backslash; ``<`` and ``&`` where they
  could open a tag, an autolink or an entity, and a leading ``>``, as HTML entities; ``://`` and ``www.``
  broken; a leading ``#``, ``-``, ``+``, ``1.`` or ``===`` escaped. So no link, image, autolink, HTML,
  emphasis, code, table, heading, list or quotation can form. The characters that form markup only after one
  of these (``( ) ! .``) are left alone, so ordinary names ("methotrexate 2.5 mg tablet (Trexall)") read
  unchanged in the raw text. (An e-mail address is left as it is: GFM may show it as a ``mailto:`` link.)
- ``csv_cell``: a text cell of a CSV file that a spreadsheet would read as a formula (it starts with
  ``= + - @``, a tab or a carriage return; OWASP "CSV injection") gets a leading ``'``; numbers stay numbers.
"""

from __future__ import annotations

import re
from typing import Any

# C0 and C1 controls (ESC, CSI ...), DEL, line and paragraph separators, bidirectional embeddings, overrides
# and isolates
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_RAW_IN_JSON = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")  # json.dumps escapes C0 itself
_SPACES = re.compile(r"[\t\n\v\f\r\x1c-\x1f\x85\u2028\u2029]")
_TAG = re.compile(r"<(?=[A-Za-z/!?])")
_MARKDOWN = re.compile(r"[\\`*_\[\]|~]")
# what can open HTML, an autolink or an entity: ``<`` before a letter, ``/``, ``!`` or ``?``; ``&`` before a
# letter or ``#`` (``< 30 mL/min`` and ``A & B`` open nothing and stay as they are); ``>`` opens a quotation
# only at the start of a line
_HTML = re.compile(r"<(?=[A-Za-z/!?])|&(?=[A-Za-z#])|^>")
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_AUTOLINK = re.compile(r"(?i)(://|\bwww\.)")
# what opens a block at the start of a line: a heading, a list item, a setext underline or thematic break
_LINE_START = re.compile(r"^(?:#{1,6}|[+-]|\d{1,9}[.)])(?=\s|$)|^[=-]+\s*$")
_MAY_FORM_MARKUP = re.compile(r"[\\`*_\[\]|~<&>]|://|(?i:www)\.|^(?:[#+=-]|\d)")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def plain_text(text: Any) -> str:
    """``text`` without control characters or bidirectional overrides; line breaks and tabs as spaces; a ``<``
    that would open an HTML tag (before a letter, ``/``, ``!`` or ``?``) as ``\u2039``, so that a reader that
    renders HTML where plain text is due shows it as text."""
    return _TAG.sub("\u2039", _one_line(text))


def _one_line(text: Any) -> str:
    text = str(text)
    return _CONTROL.sub("", _SPACES.sub(" ", text)) if _CONTROL.search(text) else text


def markdown_text(text: Any) -> str:
    """``text`` as literal GitHub-flavored Markdown: it reads the same and forms no markup."""
    escaped = _one_line(text)
    if not _MAY_FORM_MARKUP.search(escaped):  # most names: nothing to escape
        return escaped
    escaped = _MARKDOWN.sub(lambda m: "\\" + m[0], escaped)
    escaped = _HTML.sub(lambda m: _ENTITIES[m[0]], escaped)
    escaped = _AUTOLINK.sub(lambda m: ":\\/\\/" if m[0] == "://" else m[0][:3] + "\\.", escaped)
    return _LINE_START.sub(lambda m: m[0][:-1] + "\\" + m[0][-1] if m[0][0].isdigit() else "\\" + m[0], escaped,
                           count=1)


def terminal_json(text: str) -> str:
    """JSON text for a terminal: the characters a terminal could act on that JSON may leave raw in a string
    (DEL, the C1 controls, the bidirectional overrides and isolates) as ``\\uXXXX`` escapes: the same JSON."""
    return _RAW_IN_JSON.sub(lambda m: f"\\u{ord(m[0]):04x}", text)


def csv_cell(value: Any) -> Any:
    """A CSV cell as written: text that a spreadsheet would take for a formula gets a leading ``'``; other
    values (numbers, text) unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value
