#!/usr/bin/env python3
"""Checks that the project's sources keep to their layers.

Usage: check-layers.py [--root DIR] [--graph] [--self-test]

Every C file of runtime/, eventing/ and include/ belongs to one layer (the
table LAYERS below, longest path prefix wins). The check fails when

  1. a file is in no layer (a new folder must be placed in the table);
  2. a file includes a project header of a layer it may not use: a layer
     may include its own headers and those of the layers it lists, which are
     always lower ones (calls go down; what comes back up goes through a
     callback or an ops table the caller gave);
  3. a quoted include names no file of the project (a typo, or a header
     that moved);
  4. the modules (a .c file and its .h, by name) depend on each other in a
     circle, inside a layer too. A module depends on another when it
     includes its header or uses a name the other defines: a function
     defined in its .c file, or a type, struct, enum constant or macro
     defined in its header;
  5. a header declares a non-static function that is defined in another
     module's .c file (every module declares its own functions in its own
     header: no "everyone's header").

--graph prints the module graph (module -> modules it includes) instead.
--self-test plants each kind of fault in a copy of the tree and checks that
it is reported, so the check is known to be able to fail.
Exit status: 0 clean, 1 faults found (listed on stderr), 2 usage error.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

# (layer, path prefixes, layers it may include). Listed from the top down;
# a layer may only list layers below it.
LAYERS = [
    ("main", ["runtime/main.c"],
     ["cli", "serve", "tools", "worker", "eventing-kafka", "core"]),
    ("cli", ["runtime/cli/"], ["client", "core"]),
    ("tools", ["runtime/tools/"], ["eventing-kafka", "policy", "core"]),
    ("serve", ["runtime/server/serve.c", "runtime/server/serve.h"],
     ["front", "eventing", "control", "invoke", "fleet", "base",
      "eventing-kafka", "policy", "core"]),
    ("front", ["runtime/server/gateway/", "runtime/server/http/",
               "runtime/server/server.h"],
     ["eventing", "control", "invoke", "fleet", "base", "eventing-kafka",
      "policy", "core"]),
    ("eventing", ["eventing/"], ["base", "eventing-kafka", "policy", "core"]),
    ("control", ["runtime/server/control/"],
     ["invoke", "fleet", "base", "policy", "core"]),
    ("invoke", ["runtime/server/invoke/"], ["fleet", "base", "policy", "core"]),
    ("fleet", ["runtime/server/fleet/"], ["base", "policy", "core"]),
    ("base", ["runtime/base/"], ["policy", "core"]),
    ("eventing-kafka", ["eventing/kafka."], ["core"]),
    ("worker", ["runtime/worker/"], ["core"]),
    ("client", ["runtime/client/"], ["core"]),
    ("policy", ["runtime/policy/"], ["core"]),
    ("core", ["runtime/core/", "include/impulse/"], []),
]

SOURCE_DIRS = ["runtime", "eventing", "include"]
# Generated at build time (build/gen), part of the core layer.
GENERATED = {"impulse.pb-c.h": "core", "dashboard_html.h": "front"}

INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
# A top-level function declaration or definition: a line that starts at
# column 0 with a type and names a function followed by "(".
FUNC_RE = re.compile(r"^(?!static\b)(?!typedef\b)(?!extern\b)(?!return\b)"
                     r"[A-Za-z_][\w \t\*]*?\b([A-Za-z_]\w*)\s*\(", re.M)
# Names a header defines for others: typedef names, struct/union/enum tags,
# enum constants, macros, static inline functions.
TAG_RE = re.compile(r"\b(?:struct|union|enum)\s+([A-Za-z_]\w*)\s*\{")
MACRO_RE = re.compile(r"^\s*#\s*define\s+([A-Za-z_]\w*)", re.M)
ENUM_BODY_RE = re.compile(r"\benum\b[^{;]*\{([^}]*)\}", re.S)
INLINE_RE = re.compile(r"^static\s+inline\b[^;{(]*?\b([A-Za-z_]\w*)\s*\(", re.M)
WORD_RE = re.compile(r"\b[A-Za-z_]\w*\b")
# Names everyone defines (entry points of binaries) are not dependencies.
COMMON_NAMES = {"main"}
WHY = {}  # (module, module) -> names that tie them


def layer_of(path):
    best = None
    for name, prefixes, _ in LAYERS:
        for p in prefixes:
            if path.startswith(p) and (best is None or len(p) > best[1]):
                best = (name, len(p))
    return best[0] if best else None


def sources(root):
    out = []
    for d in SOURCE_DIRS:
        for dirpath, _, files in os.walk(os.path.join(root, d)):
            for f in files:
                if f.endswith((".c", ".h")):
                    out.append(os.path.relpath(os.path.join(dirpath, f), root))
    return sorted(out)


# Installed headers and the module that implements them.
PUBLIC_HEADERS = {"include/impulse/client.h": "runtime/client/client"}


def module_of(path):
    """A .c file and its headers: x.c, x.h and x_internal.h (the private
    declarations of x.c, as libuv's internal.h) are one module."""
    if path in PUBLIC_HEADERS:
        return PUBLIC_HEADERS[path]
    base = os.path.splitext(path)[0]
    return base[: -len("_internal")] if base.endswith("_internal") else base


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def strip_strings(text):
    return re.sub(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', '""', text)


def typedef_names(text):
    """Names typedef declares, struct bodies skipped by brace matching."""
    out = set()
    for m in re.finditer(r"\btypedef\b", text):
        i, depth, last_word = m.end(), 0, None
        while i < len(text):
            c = text[i]
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
            elif c == ";" and depth == 0:
                break
            i += 1
        decl = text[m.end():i]
        # Drop the bodies; the declared name is the last identifier, or the
        # one in "(*name)" for a function pointer type.
        flat, depth = [], 0
        for c in decl:
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
            elif depth == 0:
                flat.append(c)
        flat = "".join(flat)
        fp = re.search(r"\(\s*\*\s*([A-Za-z_]\w*)\s*\)", flat)
        if fp:
            out.add(fp.group(1))
            continue
        words = re.findall(r"[A-Za-z_]\w*", re.sub(r"\[[^\]]*\]", "", flat))
        if words:
            out.add(words[-1])
    return out


def header_names(text):
    """Names a header defines for its users."""
    names = set(MACRO_RE.findall(text))
    names |= typedef_names(text)
    names.update(TAG_RE.findall(text))
    names.update(INLINE_RE.findall(text))
    for body in ENUM_BODY_RE.findall(text):
        for item in body.split(","):
            m = re.match(r"\s*([A-Za-z_]\w*)", item)
            if m:
                names.add(m.group(1))
    # Include guards define nothing anyone uses.
    return {n for n in names if not n.endswith("_H")}


def resolve(root, src, inc, files):
    """The project file `#include "inc"` in `src` names, or None."""
    here = os.path.normpath(os.path.join(os.path.dirname(src), inc))
    if here in files:
        return here
    for base in ("runtime", ".", "include"):
        cand = os.path.normpath(os.path.join(base, inc))
        if cand in files:
            return cand
    return None


def check(root, graph_only=False):
    files = sources(root)
    fileset = set(files)
    allowed = {name: set(deps) | {name} for name, _, deps in LAYERS}
    faults = []
    edges = {}
    declared = {}  # function -> header declaring it
    defined = {}  # function -> .c defining it
    definers = {}  # name -> set of modules that define it
    texts = {}
    for f in files:
        layer = layer_of(f)
        if layer is None:
            faults.append(f"{f}: in no layer (add its folder to LAYERS in scripts/check-layers.py)")
            continue
        text = strip_comments(open(os.path.join(root, f), encoding="utf-8", errors="replace").read())
        texts[f] = text
        mod = module_of(f)
        edges.setdefault(mod, set())
        for inc in INCLUDE_RE.findall(text):
            if os.path.basename(inc) in GENERATED:
                target_layer, target = GENERATED[os.path.basename(inc)], None
            else:
                target = resolve(root, f, inc, fileset)
                if target is None:
                    faults.append(f'{f}: #include "{inc}" names no file of the project')
                    continue
                target_layer = layer_of(target)
            if target_layer not in allowed[layer]:
                faults.append(f'{f} ({layer}) includes "{inc}" ({target_layer}): '
                              f"not a layer {layer} may use")
            if target is not None and module_of(target) != mod:
                edges[mod].add(module_of(target))
        for m in FUNC_RE.finditer(text):
            name = m.group(1)
            if f.endswith(".h"):
                # A prototype (ends with ';' somewhere before the next '{').
                tail = text[m.end():]
                semi, brace = tail.find(";"), tail.find("{")
                if semi >= 0 and (brace < 0 or semi < brace):
                    declared.setdefault(name, f)
            else:
                tail = text[m.end():]
                semi, brace = tail.find(";"), tail.find("{")
                if brace >= 0 and (semi < 0 or brace < semi):
                    defined.setdefault(name, f)
                    definers.setdefault(name, set()).add(mod)
        if f.endswith(".h"):
            for name in header_names(text):
                definers.setdefault(name, set()).add(mod)
    # Uses of names another module defines are dependencies too: a call
    # (or a type) reaches its module whether or not its header says so.
    for f, text in texts.items():
        mod = module_of(f)
        body = strip_strings(INCLUDE_RE.sub("", text))
        for word in set(WORD_RE.findall(body)):
            owners = definers.get(word)
            if not owners or len(owners) != 1 or word in COMMON_NAMES:
                continue
            owner = next(iter(owners))
            if owner != mod:
                edges[mod].add(owner)
                WHY.setdefault((mod, owner), set()).add(word)
    if graph_only:
        for mod in sorted(edges):
            print(f"{mod} [{layer_of(mod + '.c') or layer_of(mod + '.h')}] -> "
                  + ", ".join(sorted(edges[mod])))
        return 0
    for name, header in sorted(declared.items()):
        src = defined.get(name)
        if src is not None and module_of(src) != module_of(header):
            faults.append(f"{header} declares {name}(), which {src} defines: "
                          f"declare it in {module_of(src)}.h")
    faults.extend(cycles(edges))
    for fault in faults:
        print("check-layers: " + fault, file=sys.stderr)
    if not faults:
        print(f"check-layers: {len(files)} files in {len(LAYERS)} layers, "
              f"{sum(len(v) for v in edges.values())} module dependencies, no fault")
    return 1 if faults else 0


def cycles(edges):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                ties = []
                for a in sorted(comp):
                    for b in sorted(edges.get(a, ())):
                        if b in comp:
                            names = sorted(WHY.get((a, b), ()))[:4]
                            ties.append(f"{a} -> {b}" + (f" ({', '.join(names)})" if names else " (#include)"))
                out.append("modules depend on each other in a circle: " + ", ".join(sorted(comp))
                           + "\n    " + "\n    ".join(ties))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def self_test(root):
    """Plants one fault of each kind in a copy and expects it reported."""
    plants = [
        ("upward include", "runtime/core/common.h", '#include "base/store.h"\n'),
        ("unknown include", "runtime/core/common.h", '#include "core/no_such_header.h"\n'),
        ("circle", "runtime/core/codec.h", '#include "core/common.h"\n', "runtime/core/common.h",
         '#include "core/codec.h"\n'),
        ("foreign declaration", "runtime/core/common.h", "int imp_frame_decode_twin(void);\n",
         "runtime/core/codec.c", "int imp_frame_decode_twin(void) { return 0; }\n"),
    ]
    failed = 0
    for plant in plants:
        what = plant[0]
        tmp = tempfile.mkdtemp(prefix="check-layers-")
        try:
            for d in SOURCE_DIRS:
                if os.path.isdir(os.path.join(root, d)):
                    shutil.copytree(os.path.join(root, d), os.path.join(tmp, d))
            for i in range(1, len(plant), 2):
                path = os.path.join(tmp, plant[i])
                with open(path, "a", encoding="utf-8") as fh:
                    fh.write(plant[i + 1])
            r = subprocess.run([sys.executable, __file__, "--root", tmp],
                               capture_output=True, text=True)
            if r.returncode != 1:
                print(f"check-layers --self-test: a planted {what} was not reported "
                      f"(exit {r.returncode})", file=sys.stderr)
                failed = 1
            else:
                print(f"check-layers --self-test: planted {what}: reported")
        finally:
            shutil.rmtree(tmp)
    return failed


def main(argv):
    root = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    graph = st = False
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--root" and i + 1 < len(argv):
            root = argv[i + 1]
            i += 1
        elif a == "--graph":
            graph = True
        elif a == "--self-test":
            st = True
        elif a in ("-h", "--help"):
            print(__doc__)
            return 0
        else:
            print(f"check-layers: unknown argument '{a}' (see --help)", file=sys.stderr)
            return 2
        i += 1
    if st:
        clean = check(root)
        return 1 if clean != 0 else self_test(root)
    return check(root, graph)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
