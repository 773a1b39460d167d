"""Reading the workspace's Rust sources as text, for the checks in
scripts/ (check-cycles.py, check-contracts.py)."""

import re

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
TEST_MODULE = re.compile(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+" + IDENT + r"\s*\{")
TEST_MODULE_FILE = re.compile(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+" + IDENT + r"\s*;")


def blank_test_modules(text):
    """`text` with every `#[cfg(test)] mod name { ... }` block blanked
    (newlines kept, so line numbers still hold), and every `#[cfg(test)]
    mod name;` declaration (its file is a test's): tests may reach anywhere
    and spell anything."""
    text = TEST_MODULE_FILE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)
    out, i = [], 0
    while True:
        m = TEST_MODULE.search(text, i)
        if not m:
            out.append(text[i:])
            break
        out.append(text[i : m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        out.append(re.sub(r"[^\n]", " ", text[m.start() : j]))
        i = j
    return "".join(out)
