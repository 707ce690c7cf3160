#!/usr/bin/env python3
"""Parses PowerShell scripts with tree-sitter's PowerShell grammar and fails on any syntax
error, naming its line. A parse, not a run: it catches an unclosed brace, parenthesis or
string before a Windows user does (scripts/windows-smoke.ps1 cannot run here).

usage: ps-syntax.py FILE.ps1...   (needs the tree-sitter and tree-sitter-powershell packages)
"""

import sys

import tree_sitter
import tree_sitter_powershell


def errors(parser, source):
    """The ERROR and missing nodes of the parse, outermost first."""
    found, todo = [], [parser.parse(source).root_node]
    while todo:
        node = todo.pop()
        if node.type == "ERROR" or node.is_missing:
            found.append(node)
            continue
        todo.extend(node.children)
    return sorted(found, key=lambda n: n.start_point)


def main(paths):
    parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))
    bad = 0
    for path in paths:
        with open(path, "rb") as f:
            source = f.read()
        lines = source.split(b"\n")
        for node in errors(parser, source):
            row, col = node.start_point
            what = "missing " + node.type if node.is_missing else "syntax error"
            text = lines[row].decode(errors="replace").strip()[:120]
            print(f"{path}:{row + 1}:{col + 1}: {what}: {text}")
            bad += 1
        if bad == 0:
            print(f"ok   {path} parses ({len(lines)} lines)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
