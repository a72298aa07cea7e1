#!/usr/bin/env python3
"""Checks a Helm chart's templates against its values.yaml, without helm.

    check_chart.py CHART_DIR

Reports, as FILE:LINE: message, and exits 1 when any is found:
  - a `.Values.a.b` referenced by a template (or NOTES.txt, _helpers.tpl)
    that values.yaml does not define;
  - a value in values.yaml that no template reads (neither it nor a map
    that contains it);
  - an `include`/`template` of a name no `define` gives;
  - if/range/with/define/block actions without their `end`, an `else` or
    `end` without an opening action, and `{{` or `}}` outside an action;
  - Chart.yaml without apiVersion v2, the chart directory's name, or a
    SemVer version.

Only whole paths from `.Values` are checked: a template that reads a
value through a variable or `with` (`.x` after `with .Values.a`) is checked
up to the part it names from `.Values`.
"""
import os
import re
import sys

import yaml

ACTION = re.compile(r"\{\{(.*?)\}\}", re.S)
VALUES_REF = re.compile(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")
INCLUDE = re.compile(r"\b(?:include|template)\s+\"([^\"]+)\"")
DEFINE = re.compile(r"^\s*define\s+\"([^\"]+)\"")
OPENERS = {"if", "range", "with", "define", "block"}
SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")


def line_of(text, offset):
    return text.count("\n", 0, offset) + 1


def action_body(raw):
    """The text of an action without trim markers and surrounding blanks."""
    body = raw
    if body.startswith("-") and (len(body) == 1 or body[1] in " \t\r\n"):
        body = body[1:]
    if body.endswith("-") and (len(body) == 1 or body[-2] in " \t\r\n"):
        body = body[:-1]
    return body.strip()


def value_leaves(node, prefix=()):
    """Paths of the leaves of values.yaml: scalars, lists and empty maps."""
    if isinstance(node, dict) and node:
        for key, child in node.items():
            yield from value_leaves(child, prefix + (str(key),))
    elif prefix:
        yield prefix


def has_path(values, path):
    node = values
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def template_files(chart):
    tdir = os.path.join(chart, "templates")
    for root, _, files in os.walk(tdir):
        for name in sorted(files):
            if name.endswith((".yaml", ".yml", ".tpl", ".txt")):
                yield os.path.join(root, name)


def check_chart_yaml(chart, problems):
    path = os.path.join(chart, "Chart.yaml")
    with open(path) as f:
        meta = yaml.safe_load(f) or {}
    if meta.get("apiVersion") != "v2":
        problems.append(f"{path}:1: apiVersion is not v2")
    name = os.path.basename(os.path.normpath(chart))
    if meta.get("name") != name:
        problems.append(f"{path}:1: name is not the directory's name '{name}'")
    if not SEMVER.match(str(meta.get("version", ""))):
        problems.append(f"{path}:1: version is not SemVer")


def main(argv):
    if len(argv) != 2:
        print("usage: check_chart.py CHART_DIR", file=sys.stderr)
        return 2
    chart = argv[1]
    problems = []
    check_chart_yaml(chart, problems)
    values_path = os.path.join(chart, "values.yaml")
    with open(values_path) as f:
        values = yaml.safe_load(f) or {}
    if not isinstance(values, dict):
        print(f"{values_path}: not a map", file=sys.stderr)
        return 1

    refs = []      # (path tuple, file, line)
    includes = []  # (name, file, line)
    defines = set()
    for path in template_files(chart):
        with open(path) as f:
            text = f.read()
        stack = []  # (keyword, line)
        for m in ACTION.finditer(text):
            line = line_of(text, m.start())
            body = action_body(m.group(1))
            if body.startswith("/*"):
                if not body.endswith("*/"):
                    problems.append(f"{path}:{line}: comment not closed in its action")
                continue
            if "{{" in body:
                problems.append(f"{path}:{line}: '{{{{' inside an action")
            for r in VALUES_REF.finditer(body):
                refs.append((tuple(r.group(1)[1:].split(".")), path, line))
            for i in INCLUDE.finditer(body):
                includes.append((i.group(1), path, line))
            d = DEFINE.match(body)
            if d:
                defines.add(d.group(1))
            words = body.split()
            word = words[0] if words else ""
            if word in OPENERS:
                stack.append((word, line))
            elif word == "else":
                if not stack:
                    problems.append(f"{path}:{line}: else without if/range/with")
            elif word == "end":
                if not stack:
                    problems.append(f"{path}:{line}: end without an opening action")
                else:
                    stack.pop()
        for word, line in stack:
            problems.append(f"{path}:{line}: {word} without its end")
        rest = ACTION.sub(lambda m: "\n" * m.group(0).count("\n"), text)
        for marker in ("{{", "}}"):
            at = rest.find(marker)
            if at >= 0:
                problems.append(f"{path}:{line_of(rest, at)}: stray '{marker}'")

    for ref, path, line in refs:
        if not has_path(values, ref):
            problems.append(f"{path}:{line}: .Values.{'.'.join(ref)} is not "
                            f"in values.yaml")
    for name, path, line in includes:
        if name not in defines:
            problems.append(f"{path}:{line}: include of \"{name}\", which no "
                            f"template defines")
    used = {ref for ref, _, _ in refs}
    for leaf in value_leaves(values):
        if not any(leaf[:len(r)] == r or r[:len(leaf)] == leaf for r in used):
            problems.append(f"{values_path}: {'.'.join(leaf)} is not used by "
                            f"any template")

    for p in problems:
        print(p)
    if problems:
        print(f"{chart}: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"{chart}: {len(refs)} value references, {len(includes)} includes, "
          f"all defined; every value used")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
