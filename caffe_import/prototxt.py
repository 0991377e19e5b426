"""Protobuf text-format ("prototxt") parser, driven by :mod:`caffe_import.schema`.

Accepts what protobuf's own text parser accepts for Caffe files: ``#`` comments; fields
separated by whitespace, ``,`` or ``;``; sub-messages as ``name { ... }``, ``name: { ... }``
or with ``< ... >``; repeated fields written once per element or as ``name: [a, b]``;
enums by name (or by a known number); strings in single or double quotes with C escapes
(``\\n``, ``\\t``, ``\\'``, ``\\"``, ``\\\\``, octal ``\\101``, hex ``\\x41``, ``\\u00e9``) and
adjacent literals concatenated; integers in decimal, hex (``0x1F``) or octal (``017``);
floats with exponents, an ``f`` suffix, ``inf``/``infinity``/``nan`` (any case), negatives;
bools ``true``/``false``/``True``/``False``/``t``/``f``/``1``/``0``.

Output follows the package contract: dicts holding only the fields present, repeated
fields as lists, enums as NAME strings.  ``float`` fields are rounded to float32, as Caffe
stores them, so a prototxt and a caffemodel give identical numbers.

Errors are :class:`FormatError` with ``where = "line:column"`` (1-based): syntax errors,
unknown field names (naming the field and the message; every unknown field of the text in one
error, the first one's position as ``where``), a non-repeated field given twice,
unknown enum names, integers out of range, nesting deeper than 100.  Bytes that are not UTF-8
are accepted in comments and strings, as by Caffe (C++ protobuf does not check proto2 strings).
"""

from __future__ import annotations

import bisect
import math
import re

import numpy as np

from . import schema
from .errors import FormatError

MAX_DEPTH = 100

_TOKEN_RE = re.compile(r"""
    (?P<ws>[ \t\r\n\f\v]+)
  | (?P<comment>\#[^\n]*)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<number>0[xX][0-9A-Fa-f]+
              | (?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[fF]?)
  | (?P<string>"(?:[^"\\\n]|\\[^\n])*"|'(?:[^'\\\n]|\\[^\n])*')
  | (?P<badstring>["'])
  | (?P<symbol>[{}<>:\[\],;\-/.])
  | (?P<other>.)
""", re.X | re.S)

_SIMPLE_ESCAPES = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11,
                   "\\": 92, "'": 39, '"': 34, "?": 63}
_BOOL_WORDS = {"true": True, "True": True, "t": True, "false": False, "False": False, "f": False}
_F32_MAX = float(np.finfo(np.float32).max)


class _Tok:
    __slots__ = ("kind", "text", "pos")

    def __init__(self, kind, text, pos):
        self.kind, self.text, self.pos = kind, text, pos


def _to_float32(x: float) -> float:
    if math.isnan(x) or math.isinf(x):
        return x
    with np.errstate(over="ignore"):
        return float(np.float32(x))


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        self.toks = self._tokenize(text)
        self.i = 0
        self.unknown = []       # FormatErrors of unknown fields, raised together at the end

    # ------------------------------------------------------------------ helpers
    def where(self, pos: int) -> str:
        line = bisect.bisect_right(self.line_starts, pos) - 1
        return f"{line + 1}:{pos - self.line_starts[line] + 1}"

    def error(self, what, pos, expected=None):
        return FormatError(what, self.where(pos), expected)

    def _tokenize(self, text):
        toks = []
        for m in _TOKEN_RE.finditer(text):
            kind = m.lastgroup
            if kind in ("ws", "comment"):
                continue
            pos = m.start()
            if kind == "badstring":
                raise self.error("unterminated string literal", pos,
                                 "a closing quote on the same line")
            if kind == "other":
                raise self.error(f"unexpected character {m.group()!r}", pos)
            if kind == "number":
                nxt = m.end()
                if nxt < len(text) and (text[nxt].isalnum() or text[nxt] == "_"):
                    raise self.error(f"number {m.group()!r} runs into {text[nxt]!r}", pos,
                                     "whitespace or a symbol after a number")
            toks.append(_Tok(kind, m.group(), pos))
        toks.append(_Tok("eof", "", len(text)))
        return toks

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def next(self) -> _Tok:
        tok = self.toks[self.i]
        if tok.kind != "eof":
            self.i += 1
        return tok

    def at(self, symbol: str) -> bool:
        tok = self.toks[self.i]
        return tok.kind == "symbol" and tok.text == symbol

    def accept(self, symbol: str) -> bool:
        if self.at(symbol):
            self.i += 1
            return True
        return False

    def expect(self, symbol: str, context: str):
        tok = self.peek()
        if not self.at(symbol):
            raise self.error(f"unexpected {_describe(tok)} {context}", tok.pos, f"'{symbol}'")
        self.i += 1
        return tok

    # ------------------------------------------------------------------ grammar
    def message(self, msg, close, depth, open_tok):
        if depth > MAX_DEPTH:
            raise self.error("messages nested too deeply", open_tok.pos,
                             f"at most {MAX_DEPTH} levels")
        result: dict = {}
        while True:
            tok = self.peek()
            if tok.kind == "eof":
                if close is None:
                    return result
                raise self.error(f"end of input inside message {msg.name} opened at "
                                 f"{self.where(open_tok.pos)}", tok.pos, f"'{close}'")
            if close is not None and self.at(close):
                self.i += 1
                return result
            if tok.kind != "ident":
                raise self.error(f"unexpected {_describe(tok)} in message {msg.name}", tok.pos,
                                 "a field name" + (f" or '{close}'" if close else ""))
            self.i += 1
            f = msg.by_name.get(tok.text)
            if f is None:
                self.unknown_field(msg, tok)
                continue
            if not f.repeated and f.name in result:
                raise self.error(f'non-repeated field "{f.name}" of {msg.name} is specified '
                                 f"multiple times", tok.pos, "at most one occurrence")
            if f.type == "message":
                sub = schema.MESSAGES[f.message]
                colon = self.accept(":")
                if f.repeated and self.at("["):
                    values = self.list_of(lambda: self.sub_message(sub, depth, f, tok))
                    result.setdefault(f.name, []).extend(values)
                else:
                    if not colon and not (self.at("{") or self.at("<")):
                        nxt = self.peek()
                        raise self.error(f"unexpected {_describe(nxt)} after message field "
                                         f"\"{f.name}\"", nxt.pos, "'{' or '<'")
                    value = self.sub_message(sub, depth, f, tok)
                    if f.repeated:
                        result.setdefault(f.name, []).append(value)
                    else:
                        result[f.name] = value
            else:
                self.expect(":", f'after field "{f.name}"')
                if f.repeated and self.at("["):
                    result.setdefault(f.name, []).extend(self.list_of(lambda: self.scalar(f)))
                elif f.repeated:
                    result.setdefault(f.name, []).append(self.scalar(f))
                else:
                    result[f.name] = self.scalar(f)
            if not self.accept(";"):
                self.accept(",")

    def unknown_field(self, msg, tok):
        """Record an unknown field and skip its value, so that one error names them all."""
        self.unknown.append(self.error(f'message type "{msg.name}" has no field named "{tok.text}"'
                                       f"{schema.fork_note(msg.name, tok.text)}",
                                       tok.pos, "a field of " + msg.name))
        colon = self.accept(":")
        if self.at("{") or self.at("<") or (colon and self.at("[")):
            self.skip_balanced()
        elif colon:
            self.accept("-")
            nxt = self.next()
            if nxt.kind not in ("ident", "number", "string"):
                raise self.error(f"unexpected {_describe(nxt)} after field \"{tok.text}\"", nxt.pos,
                                 "a value")
            while nxt.kind == "string" and self.peek().kind == "string":
                self.next()
        else:
            nxt = self.peek()
            raise self.error(f"unexpected {_describe(nxt)} after field \"{tok.text}\"", nxt.pos,
                             "':' or '{'")
        if not self.accept(";"):
            self.accept(",")

    def skip_balanced(self):
        open_tok = self.next()
        closing = {"{": "}", "<": ">", "[": "]"}
        stack = [closing[open_tok.text]]
        while stack:
            tok = self.next()
            if tok.kind == "eof":
                raise self.error("end of input inside an unknown field's value opened at "
                                 f"{self.where(open_tok.pos)}", tok.pos, f"'{stack[-1]}'")
            if tok.kind == "symbol" and tok.text in closing:
                stack.append(closing[tok.text])
            elif tok.kind == "symbol" and tok.text == stack[-1]:
                stack.pop()

    def sub_message(self, sub, depth, f, name_tok):
        tok = self.peek()
        if self.accept("{"):
            return self.message(sub, "}", depth + 1, tok)
        if self.accept("<"):
            return self.message(sub, ">", depth + 1, tok)
        raise self.error(f"unexpected {_describe(tok)} for message field \"{f.name}\"",
                         tok.pos, "'{' or '<'")

    def list_of(self, item):
        self.expect("[", "")
        values = []
        if self.accept("]"):
            return values
        while True:
            values.append(item())
            if self.accept("]"):
                return values
            self.expect(",", "in a [...] list")

    def scalar(self, f):
        t = f.type
        if t in ("string", "bytes"):
            return self.string(f)
        tok = self.peek()
        negative = False
        if self.at("-"):
            negative = True
            self.i += 1
            tok = self.peek()
        if t in ("float", "double"):
            value = self.float_value(tok, f, negative)
            return _to_float32(value) if t == "float" else value
        if t == "bool" and tok.kind == "ident" and not negative:
            if tok.text not in _BOOL_WORDS:
                raise self.error(f"invalid value {tok.text!r} for bool field \"{f.name}\"",
                                 tok.pos, "true or false")
            self.i += 1
            return _BOOL_WORDS[tok.text]
        if t == "enum" and tok.kind == "ident" and not negative:
            if tok.text not in f.enum.values:
                raise self.error(f"unknown enumeration value {tok.text!r} for field "
                                 f"\"{f.name}\"", tok.pos,
                                 "one of " + ", ".join(f.enum.values))
            self.i += 1
            return tok.text
        value = self.integer(tok, f, negative)
        if t == "bool":
            if value not in (0, 1):
                raise self.error(f"invalid value {value} for bool field \"{f.name}\"",
                                 tok.pos, "true, false, 1 or 0")
            return bool(value)
        if t == "enum":
            if value not in f.enum.names:
                raise self.error(f"unknown enumeration number {value} for field \"{f.name}\"",
                                 tok.pos, "one of " + ", ".join(f.enum.values))
            return f.enum.names[value]
        lo, hi = schema.INT_RANGES[t]
        if not lo <= value <= hi:
            raise self.error(f"integer {value} out of range for {t} field \"{f.name}\"",
                             tok.pos, f"{lo} .. {hi}")
        return value

    def integer(self, tok, f, negative):
        if tok.kind != "number":
            raise self.error(f"unexpected {_describe(tok)} for {f.type} field \"{f.name}\"",
                             tok.pos, "an integer")
        text = tok.text
        try:
            if text[:2] in ("0x", "0X"):
                value = int(text, 16)
            elif re.fullmatch(r"0[0-7]+", text):
                value = int(text, 8)
            elif re.fullmatch(r"0|[1-9][0-9]*", text):
                value = int(text)
            else:
                raise ValueError
        except ValueError:
            raise self.error(f"expected an integer for {f.type} field \"{f.name}\", got "
                             f"{text!r}", tok.pos, "an integer") from None
        self.i += 1
        return -value if negative else value

    def float_value(self, tok, f, negative):
        if tok.kind == "ident" and tok.text.lower() in ("inf", "infinity", "nan"):
            value = math.nan if tok.text.lower() == "nan" else math.inf
        elif tok.kind == "number":
            text = tok.text
            try:
                if text[:2] in ("0x", "0X"):
                    value = float(int(text, 16))
                else:
                    value = float(text.rstrip("fF"))
            except ValueError:
                raise self.error(f"bad number {text!r} for field \"{f.name}\"", tok.pos,
                                 "a floating-point number") from None
        else:
            raise self.error(f"unexpected {_describe(tok)} for {f.type} field \"{f.name}\"",
                             tok.pos, "a number")
        self.i += 1
        return -value if negative else value

    def string(self, f):
        tok = self.peek()
        if tok.kind != "string":
            raise self.error(f"unexpected {_describe(tok)} for {f.type} field \"{f.name}\"",
                             tok.pos, "a quoted string")
        raw = bytearray()
        while self.peek().kind == "string":
            tok = self.next()
            raw += self.unescape(tok)
        if f.type == "bytes":
            return bytes(raw)
        return decode_string(bytes(raw))

    def unescape(self, tok) -> bytes:
        body = tok.text[1:-1]
        out = bytearray()
        i, n = 0, len(body)
        while i < n:
            c = body[i]
            if c != "\\":
                j = body.find("\\", i)
                j = n if j < 0 else j
                out += _source_bytes(body[i:j])
                i = j
                continue
            pos = tok.pos + 1 + i
            e = body[i + 1]
            if e in _SIMPLE_ESCAPES:
                out.append(_SIMPLE_ESCAPES[e])
                i += 2
            elif e in "01234567":
                m = re.match(r"[0-7]{1,3}", body[i + 1:])
                value = int(m.group(), 8)
                if value > 255:
                    raise self.error(f"octal escape \\{m.group()} is above 255", pos)
                out.append(value)
                i += 1 + len(m.group())
            elif e in "xX":
                m = re.match(r"[0-9A-Fa-f]{1,2}", body[i + 2:])
                if not m:
                    raise self.error("\\x escape without hex digits", pos, "\\x and 1-2 hex digits")
                out.append(int(m.group(), 16))
                i += 2 + len(m.group())
            elif e in "uU":
                width = 4 if e == "u" else 8
                m = re.match(r"[0-9A-Fa-f]{%d}" % width, body[i + 2:])
                if not m or int(m.group(), 16) > 0x10FFFF:
                    raise self.error(f"bad \\{e} escape", pos, f"\\{e} and {width} hex digits")
                out += chr(int(m.group(), 16)).encode("utf-8", "surrogatepass")
                i += 2 + width
            else:
                raise self.error(f"invalid escape sequence \\{e} in string", pos,
                                 "one of \\n \\t \\r \\\\ \\' \\\" \\a \\b \\f \\v \\? "
                                 "\\NNN \\xHH \\uHHHH")
        return bytes(out)


def _describe(tok) -> str:
    if tok.kind == "eof":
        return "end of input"
    if tok.kind == "string":
        return f"string {tok.text[:20]}"
    return f"{tok.kind} '{tok.text}'" if tok.kind != "symbol" else f"'{tok.text}'"


def decode_string(raw: bytes) -> str:
    """A proto2 ``string`` field's bytes as str, the way Caffe keeps them: C++ protobuf does not
    check UTF-8 in proto2 strings, so bytes that are not UTF-8 are kept, each as the lone
    surrogate U+DC80+byte (Python's ``surrogateescape``); ``encode_string`` gives the bytes back."""
    return raw.decode("utf-8", "surrogateescape")


def encode_string(text: str) -> bytes:
    """The bytes of a string field (the inverse of :func:`decode_string`)."""
    return _source_bytes(text)


def _source_bytes(text: str) -> bytes:
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:           # a lone surrogate outside U+DC80..U+DCFF, from str input
        return text.encode("utf-8", "surrogatepass")


def parse(text, message_name: str = "NetParameter") -> dict:
    """Parse protobuf text ``text`` (str or bytes) as message ``message_name``.

    Bytes are decoded as Caffe's C++ text parser reads them: UTF-8, with bytes that are not UTF-8
    accepted in comments and in string literals (kept, see :func:`decode_string`); elsewhere they
    are a syntax error ("unexpected character").  Returns the message dict (no upgrade, no
    defaults).  Raises FormatError.
    """
    if isinstance(text, (bytes, bytearray, memoryview)):
        text = bytes(text).decode("utf-8", "surrogateescape")
    if text.startswith("\ufeff"):
        text = text[1:]
    parser = _Parser(text)
    start = _Tok("symbol", "", 0)
    result = parser.message(schema.MESSAGES[message_name], None, 0, start)
    if parser.unknown:
        first, rest = parser.unknown[0], parser.unknown[1:]
        if not rest:
            raise first
        more = "; ".join(f"{e.where}: {e.what}" for e in rest[:19])
        more += f"; and {len(rest) - 19} more" if len(rest) > 19 else ""
        raise FormatError(f"{first.what} (expected {first.expected}); {len(rest)} more unknown "
                          f"field{'s' if len(rest) > 1 else ''}: {more}", first.where)
    return result
