"""The commands in README.md and docs/*.md stay true to the code: every
`edmips` command names a real sub-command and real options, every file it
mentions exists, every script is valid bash, and the cheap ones (validate,
plan, --version, slurm --dry-run, status, pareto, report) run for real."""
import pathlib
import re
import shlex
import shutil
import subprocess

import pytest

from conftest import edmips_binary

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FIXTURE = ROOT / "tests" / "analysis" / "fixture" / "sweep"
SUBCOMMANDS = {"trial", "validate", "plan", "sweep", "slurm", "status", "pareto", "report", "bench", "generate-folder", "export", "cost-table",
               "--version"}
RUN_FOR_REAL = {"validate", "plan", "status", "pareto", "report", "--version"}


def shell_commands():
    """(document, command) for every command line of every ```sh block."""
    found = []
    for doc in DOCS:
        for block in re.findall(r"```sh\n(.*?)```", doc.read_text(), re.S):
            text = block.replace("\\\n", " ")
            for line in text.splitlines():
                line = re.split(r"\s#\s|\s#$", line)[0].strip()
                if line and not line.startswith("#"):
                    found.append((doc.relative_to(ROOT).as_posix(), line))
    return found


COMMANDS = shell_commands()


def edmips_part(tokens):
    """The tokens from the edmips binary on, or None for other programs."""
    for i, token in enumerate(tokens):
        if re.fullmatch(r"(build(-cuda)?/src/|\S*/)?edmips", token):
            return tokens[i + 1:]
    return None


def help_text(subcommand, cache={}):
    if subcommand not in cache:
        # "bench --data" is the data benchmark, with options of its own.
        words = subcommand.split()
        result = subprocess.run([edmips_binary(), *words[:1], *(["--data", "x"] if words[1:] else []), "--help"],
                                capture_output=True, text=True)
        assert result.returncode == 0, f"edmips {subcommand} --help failed: {result.stderr}"
        cache[subcommand] = result.stdout
    return cache[subcommand]


def is_placeholder(token):
    return bool(re.search(r"[A-Z]{3,}|\.\.\.|<|\$", token))


def test_the_docs_show_commands_to_check():
    edmips = [c for _, c in COMMANDS if edmips_part(shlex.split(c)) is not None]
    assert len(edmips) >= 20


@pytest.mark.parametrize("doc,command", COMMANDS)
def test_a_documented_command_is_true_to_the_code(doc, command, tmp_path):
    tokens = [t for t in shlex.split(command) if not re.fullmatch(r"[A-Z_]+=\S*", t)]
    args = edmips_part(tokens)
    if args is None:
        first = tokens[0] if tokens else ""
        script = next((t for t in tokens if t.startswith("scripts/") or t.startswith("slurm/")), None)
        if script:
            assert (ROOT / script).exists(), f"{doc}: {script} does not exist"
            if script.endswith(".sh"):
                assert subprocess.run(["bash", "-n", str(ROOT / script)]).returncode == 0
            for token in tokens[tokens.index(script) + 1:]:
                if re.match(r"(microbench|analysis|sweeps)/", token):
                    assert (ROOT / token).exists(), f"{doc}: {token} does not exist"
        else:
            pytest.skip(f"not an edmips command or one of our scripts: {first}")
        return
    assert args, f"{doc}: edmips without a sub-command: {command}"
    sub = args[0]
    assert sub in SUBCOMMANDS, f"{doc}: unknown sub-command {sub!r} in: {command}"
    if sub != "--version":
        text = help_text("bench --data" if sub == "bench" and "--data" in args else sub)
        for token in args[1:]:
            option = token.strip("[]").split("=")[0]
            if option.startswith("--"):
                assert option in text, f"{doc}: edmips {sub} has no option {option}: {command}"
    for token in args[1:]:
        if re.match(r"(sweeps|tests|analysis)/", token) and not is_placeholder(token):
            assert (ROOT / token).exists(), f"{doc}: {token} does not exist"
    real = sub in RUN_FOR_REAL or (sub == "slurm" and "--dry-run" in args)
    if not real or any(is_placeholder(t) for t in args[1:]):
        return
    # Results directories in the docs stand for a finished sweep: the fixture;
    # an installed share/edmips stands for the source tree.
    rewritten = []
    for token in args:
        if "/share/edmips/" in token:
            token = str(ROOT / token.split("/share/edmips/", 1)[1])
        if token.startswith("results/"):
            copy = tmp_path / pathlib.Path(token).name
            if not copy.exists():
                shutil.copytree(FIXTURE, copy)
            token = str(copy)
        rewritten.append(token)
    if sub == "status" and "--watch" in rewritten:
        rewritten.remove("--watch")  # the fixture's sweep has finished: one look is the same
    result = subprocess.run([edmips_binary(), *rewritten], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, f"{doc}: `{command}` failed ({result.returncode}): {result.stderr}"
