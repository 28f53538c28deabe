"""The layering rules of docs/development.md ("Layout"), checked on the sources.

1. Folders: every `#include "FOLDER/..."` of a file in src/F names F itself or
   a folder that the table's "may use" column gives for F.
2. Libraries: no source of edmips_plan reaches (through our own headers)
   LibTorch, MPI or ONNX; none of edmips_onnx reaches LibTorch or MPI; none of
   edmips_engine reaches MPI. The source lists are src/CMakeLists.txt's.
3. Every source file of src/ is in exactly one library (or is the main).
The checker is tested on a small made-up tree too, so it is known to fail.
"""
import pathlib
import re


ROOT = pathlib.Path(__file__).resolve().parents[1]
OURS = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
SYSTEM = re.compile(r'^\s*#\s*include\s+<([^>]+)>', re.M)
FORBIDDEN = {
    "torch": re.compile(r"^(torch|ATen|c10)/"),
    "mpi": re.compile(r"^(boost/mpi|mpi\.h)"),
    "onnx": re.compile(r"^(onnx/|google/protobuf)"),
}
LIBRARY_MAY_NOT = {"PLAN": ["torch", "mpi", "onnx"], "ONNX": ["torch", "mpi"], "ENGINE": ["mpi"]}


def folder_rules(doc_text):
    """folder -> set of folders it may include, from the Layout table."""
    rules = {}
    for line in doc_text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 4 or not cells[0].startswith("`src/"):
            continue
        may_use = cells[-1]
        allowed = set(re.findall(r"`([a-z_]+)`", may_use))
        if "everything" in may_use:
            allowed.add("*")
        for folder in re.findall(r"`src/([a-z_]+)`", cells[0]):
            rules[folder] = allowed
    return rules


def library_sources(cmake_text):
    """EDMIPS_<NAME>_SOURCES lists of src/CMakeLists.txt, plus edmips_onnx's files."""
    lists = {m.group(1): m.group(2).split() for m in re.finditer(r"set\(EDMIPS_(\w+)_SOURCES\s+([^)]*)\)", cmake_text)}
    lists["ONNX"] = sorted(set(re.findall(r"\b(onnx/[a-z_]+\.cpp)", cmake_text)))
    return lists


def folder_violations(src, rules):
    problems = []
    for path in sorted(src.rglob("*")):
        if path.suffix not in {".cpp", ".h", ".inc", ".cu"}:
            continue
        folder = path.relative_to(src).parts[0]
        if folder not in rules:
            problems.append(f"src/{folder}: not in the Layout table of docs/development.md")
            continue
        allowed = rules[folder]
        for number, line in enumerate(path.read_text().splitlines(), 1):
            m = OURS.match(line)
            if not m or "/" not in m.group(1):
                continue
            target = m.group(1).split("/")[0]
            if target == folder or "*" in allowed and target != "cli" or target in allowed:
                continue
            problems.append(f"src/{path.relative_to(src)}:{number}: includes \"{m.group(1)}\", but src/{folder} "
                            f"may use only {sorted(allowed) or 'nothing of ours'} (docs/development.md)")
    return problems


def reached(src, start):
    """Our headers and system includes reached from one source file: (chain per system include)."""
    seen, found, stack = set(), {}, [(start, (start,))]
    while stack:
        name, chain = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        path = src / name
        if not path.exists():
            continue
        text = path.read_text()
        for system in SYSTEM.findall(text):
            found.setdefault(system, chain)
        for include in OURS.findall(text):
            stack.append((include, chain + (include,)))
    return found


def library_violations(src, lists):
    problems = []
    for library, kinds in LIBRARY_MAY_NOT.items():
        for source in lists.get(library, []):
            for system, chain in reached(src, source).items():
                for kind in kinds:
                    if FORBIDDEN[kind].match(system):
                        problems.append(f"edmips_{library.lower()}: src/{source} reaches <{system}> ({kind}) through "
                                        + " -> ".join(chain))
    return problems


def test_every_include_follows_the_folder_table():
    rules = folder_rules((ROOT / "docs/development.md").read_text())
    assert {"core", "sweep", "pareto", "app", "cli"} <= set(rules), rules
    assert folder_violations(ROOT / "src", rules) == []


def test_libraries_link_only_what_their_names_say():
    lists = library_sources((ROOT / "src/CMakeLists.txt").read_text())
    assert {"PLAN", "ENGINE", "MPI", "APP", "ONNX"} <= set(lists)
    assert "sweep/journal.cpp" in lists["PLAN"] and "sweep/coordinator.cpp" in lists["MPI"]
    assert library_violations(ROOT / "src", lists) == []


def test_every_source_is_in_one_library():
    lists = library_sources((ROOT / "src/CMakeLists.txt").read_text())
    cmake = (ROOT / "src/CMakeLists.txt").read_text()
    placed = [s for files in lists.values() for s in files]
    assert len(placed) == len(set(placed)), "a source in two libraries"
    cuda = set(re.findall(r"\b(quant/[a-z_]+\.(?:cpp|cu))\b", cmake[cmake.index("EDMIPS_WITH_CUDA)"):]))
    for path in (ROOT / "src").rglob("*.c*"):
        name = str(path.relative_to(ROOT / "src"))
        if name == "cli/main.cpp" or name in cuda:
            continue
        assert name in placed, f"src/{name} is in no library of src/CMakeLists.txt"


def test_the_checker_catches_a_broken_rule(tmp_path):
    src = tmp_path / "src"
    (src / "sweep").mkdir(parents=True)
    (src / "trial").mkdir()
    (src / "trial" / "trial.h").write_text("#include <torch/torch.h>\n")
    (src / "sweep" / "journal.cpp").write_text('#include "trial/trial.h"\n#include "sweep/journal.h"\n')
    rules = folder_rules("| folder | library | owns | may use |\n|---|---|---|---|\n"
                         "| `src/sweep` | plan | x | `core` |\n| `src/trial` | engine | x | `core` |\n")
    assert rules == {"sweep": {"core"}, "trial": {"core"}}
    problems = folder_violations(src, rules)
    assert len(problems) == 1 and 'includes "trial/trial.h"' in problems[0]
    problems = library_violations(src, {"PLAN": ["sweep/journal.cpp"]})
    assert len(problems) == 1 and "sweep/journal.cpp -> trial/trial.h" in problems[0] and "torch" in problems[0]
