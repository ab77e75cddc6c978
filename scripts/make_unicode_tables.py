#!/usr/bin/env python3
"""Write the Unicode data ChainLora's NFC/NFD normalizer needs (src/ChainLora/Tokenization/UnicodeData/nfc.txt).

.NET's string.Normalize does nothing in globalization-invariant mode, which ChainLora runs in, so
the tokenizer.json normalizers NFC and NFD (Qwen2/2.5/3 use NFC) are implemented in
Tokenization/UnicodeNormalization.cs over this table, taken from Python's unicodedata:

  D <code point> <code point>...   canonical decomposition (one level; Hangul syllables are algorithmic)
  C <first> <last> <class>          canonical combining class of a range (class 0 is not listed)
  X <code point>                    a two-character decomposition that NFC does not recompose
                                    (composition exclusions and non-starter decompositions)

It also writes tests/ChainLora.Tests/Fixtures/tokenizers/unicode-normalization.json: strings
(every 13th character with a decomposition, its NFD, Hangul, and seeded random runs of letters
and combining marks) with their NFC and NFD as Python's unicodedata gives them.

Run from the repository root: /usr/bin/python3 scripts/make_unicode_tables.py
"""

import json
import os
import random
import sys
import unicodedata as u

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "src", "ChainLora", "Tokenization", "UnicodeData", "nfc.txt")
CASES = os.path.join(ROOT, "tests", "ChainLora.Tests", "Fixtures", "tokenizers", "unicode-normalization.json")


def main():
    lines = [f"# Canonical decompositions and combining classes, Unicode {u.unidata_version} "
             f"(Python {sys.version.split()[0]} unicodedata); written by scripts/make_unicode_tables.py"]
    decompositions, classes = {}, {}
    for cp in range(0x110000):
        if 0xD800 <= cp < 0xE000:
            continue
        c = chr(cp)
        if u.combining(c):
            classes[cp] = u.combining(c)
        d = u.decomposition(c)
        if d and not d.startswith("<"):
            decompositions[cp] = [int(x, 16) for x in d.split()]
    for cp, parts in sorted(decompositions.items()):
        lines.append("D %04X %s" % (cp, " ".join("%04X" % p for p in parts)))
    ranges = []
    for cp in sorted(classes):
        if ranges and ranges[-1][1] == cp - 1 and ranges[-1][2] == classes[cp]:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp, classes[cp]])
    lines.extend("C %04X %04X %d" % tuple(r) for r in ranges)
    for cp, parts in sorted(decompositions.items()):
        if len(parts) == 2 and u.normalize("NFC", "".join(map(chr, parts))) != chr(cp):
            lines.append("X %04X" % cp)
    with open(OUT, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{OUT}: {len(decompositions)} decompositions, {len(ranges)} class ranges")

    rng = random.Random(20)
    marks = sorted(classes)
    letters = [c for c in range(0x41, 0x250) if u.category(chr(c)).startswith("L")] + [0x1100, 0x1161, 0x11A8, 0xAC00, 0x0915]
    texts = [chr(cp) for cp in sorted(decompositions)[::13]]
    texts += [u.normalize("NFD", t) for t in texts[::3]]
    texts += ["\u1100\u1161\u11a8", "\uac00\u11a8", "\u1100\u1161", "e\u0301", "\u212b", "\u0344", "\u0958", "Hello, world"]
    for _ in range(100):
        text = ""
        for _ in range(rng.randint(1, 4)):
            text += chr(rng.choice(letters)) + "".join(chr(rng.choice(marks)) for _ in range(rng.randint(0, 3)))
        texts.append(text)
    with open(CASES, "w", encoding="utf-8") as f:
        json.dump({"unicode": u.unidata_version, "cases": [{"text": t, "nfc": u.normalize("NFC", t), "nfd": u.normalize("NFD", t)} for t in texts]},
                  f, ensure_ascii=True, indent=0)
    print(f"{CASES}: {len(texts)} strings")


if __name__ == "__main__":
    main()
