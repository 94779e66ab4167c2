"""``finetune --output-dir``: nothing silently replaced or deleted, the repository's folders refused, a finished
run not resumed, ``--evaluate-only`` re-evaluating an adapter without training, an evaluation a limit ended
scored on what it answered with the limit named, and no unrelated library noise on a CPU run. Each failed
before its change (checked against main)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest
from kit_paths import ROOT
from training_fixtures import write_finetune_config

from submission import cli

STEPS = 2
NOISE = ("gemm_4bit_forward", "is_gradient_checkpointing", "FutureWarning")  # bitsandbytes' and transformers'


def finetune_main(argv):
    """``python -m submission finetune ...`` in this process (kit errors: exit status 2 in ``cli.main``)."""
    return cli.main(["finetune", *argv])


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_base, data_files):
    folder = tmp_path_factory.mktemp("output-folder")
    return {"config": write_finetune_config(folder / "ft.yaml", tiny_base), "folder": folder, **data_files}


def train_args(setup, out, *more) -> list[str]:
    return ["--data", str(setup["train"]), "--config", str(setup["config"]), "--output-dir", str(out),
            "--max-steps", str(STEPS), *more]


@pytest.fixture(scope="module")
def trained(setup):
    """A run trained and evaluated as a user runs it: the command in a fresh process (so that the libraries'
    messages, printed once per process, are seen), with --eval-data."""
    out = setup["folder"] / "adapter"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "submission", "finetune",
                           *train_args(setup, out, "--eval-data", str(setup["eval"]))],
                          capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"out": out, "stderr": proc.stderr, "stdout": proc.stdout}


def digest(folder) -> dict[str, str]:
    """Every file under ``folder`` and its SHA-256."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def copy_of(trained, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(trained["out"], out)
    return out


def test_a_cpu_run_and_its_evaluations_print_no_library_noise(trained):
    assert "base: verdict ok" in trained["stdout"] and "adapter: verdict ok" in trained["stdout"]
    for text in NOISE:
        assert text not in trained["stderr"], trained["stderr"][-2000:]


def test_a_folder_with_other_files_is_refused_and_overwrite_does_not_delete_them(setup, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    (out / "README.md").write_text("# my adapter\n")  # not peft's model card
    for extra in ((), ("--overwrite",)):
        assert finetune_main(train_args(setup, out, *extra)) == 2
        error = capsys.readouterr().err
        assert f"--output-dir {out} is not empty: it holds README.md, notes.txt (none of it written by " \
               "fine-tuning)" in error
        assert "--overwrite only removes what fine-tuning wrote" in error
        assert sorted(p.name for p in out.iterdir()) == ["README.md", "notes.txt"]


def test_a_finished_run_is_refused_with_the_choices_and_overwrite_replaces_it(trained, setup, tmp_path, capsys):
    out = copy_of(trained, tmp_path)
    before = digest(out)
    assert finetune_main(train_args(setup, out)) == 2
    error = capsys.readouterr().err
    assert "adapter_config.json, adapter_model.safetensors" in error
    assert f"a finished fine-tuning run: checkpoint-{STEPS}, step {STEPS} of {STEPS}" in error
    assert "--resume" not in error and "pass --overwrite to remove what the earlier run wrote" in error
    assert digest(out) == before  # nothing replaced
    assert finetune_main(train_args(setup, out, "--overwrite", "--max-steps", "1")) == 0
    assert not (out / "eval").exists()  # the earlier evaluation went with the earlier run
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["checkpoint-1", "finetune_run.json"]
    assert json.loads((out / "training.json").read_text())["steps"]["done"] == 1


@pytest.mark.parametrize("folder", [".", "models", "submission", "data", ".."])
def test_the_repositorys_own_folders_are_refused_whatever_the_flags(setup, folder, capsys):
    before = sorted(p.name for p in (ROOT / "models").iterdir())
    out = ROOT / folder
    assert finetune_main(train_args(setup, out, "--overwrite")) == 2
    error = capsys.readouterr().err
    relation = "contains" if folder == ".." else "is"
    what = "root" if folder in (".", "..") else f"{folder}/ folder"
    assert f"--output-dir {out} {relation} the repository's {what}" in error and "adapters/NAME" in error
    assert sorted(p.name for p in (ROOT / "models").iterdir()) == before


def test_resuming_a_finished_run_trains_nothing_and_says_so(trained, setup, tmp_path, capsys):
    out = copy_of(trained, tmp_path)
    before = digest(out)
    assert finetune_main(train_args(setup, out, "--resume")) == 0
    printed = capsys.readouterr().out
    assert f"training already finished (checkpoint-{STEPS}, step {STEPS} of {STEPS}); nothing to resume" in printed
    assert f"--evaluate-only --output-dir {out}" in printed
    assert digest(out) == before  # no checkpoint-3, the adapter and training.json as they were


def test_resume_and_overwrite_together_are_refused(setup, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        finetune_main(train_args(setup, tmp_path / "x", "--resume", "--overwrite"))
    assert exit_.value.code == 2 and "--resume continues the run in --output-dir; --overwrite removes it" in \
        capsys.readouterr().err


def test_evaluate_only_compares_the_adapter_with_its_base_without_training(trained, setup, tmp_path, capsys):
    out = copy_of(trained, tmp_path)
    shutil.rmtree(out / "eval")
    checkpoints = digest(out / "checkpoints")
    args = ["--evaluate-only", "--output-dir", str(out), "--eval-data", str(setup["eval"])]
    assert finetune_main(args) == 0
    printed = capsys.readouterr().out
    assert "no training" in printed and "A = base model, B = with the adapter" in printed
    assert digest(out / "checkpoints") == checkpoints
    base, adapter = (json.loads((out / "eval" / label / "results.json").read_text()) for label in ("base", "adapter"))
    assert base["verdict"]["status"] == adapter["verdict"]["status"] == "ok" and base["n_questions"] == 4
    expected = {"base": json.loads((trained["out"] / "eval" / "base" / "results.json").read_text()),
                "adapter": json.loads((trained["out"] / "eval" / "adapter" / "results.json").read_text())}
    assert base["all_around"] == expected["base"]["all_around"]  # the same comparison as right after training
    assert adapter["all_around"] == expected["adapter"]["all_around"]
    record = json.loads((out / "training.json").read_text())["evaluation"]
    assert record["runs"]["adapter"]["n_answered"] == 4 and record["compare_html"] == str(out / "eval" / "compare.html")
    assert finetune_main(args) == 2  # the evaluation just written is not replaced without --overwrite
    assert f"{out / 'eval'} holds an earlier evaluation" in capsys.readouterr().err


def test_evaluate_only_refuses_a_missing_adapter_folder_naming_the_near_one(trained, capsys):
    wrong = trained["out"].with_name("adaptr")
    with pytest.raises(SystemExit):  # --data with --evaluate-only: a usage error
        finetune_main(["--evaluate-only", "--output-dir", str(wrong), "--eval-data", "x.json", "--data", "t.json"])
    assert "--evaluate-only trains nothing: drop --data" in capsys.readouterr().err
    assert finetune_main(["--evaluate-only", "--output-dir", str(wrong), "--eval-data", "x.json"]) == 2
    assert f"no such folder; did you mean '{trained['out']}'?" in capsys.readouterr().err


def test_an_evaluation_a_limit_ends_is_scored_on_what_it_answered_and_names_the_limit(trained, setup, tmp_path,
                                                                                     capsys):
    from submission.cli.output import REPORTER
    from submission.harness.profiles import budget_track_for, limits_for
    from submission.training.evaluation import evaluate_pair, plan_evaluation, show_pair

    plan = plan_evaluation(setup["eval"], seed=0)
    tight = dataclasses.replace(plan, limits=limits_for(plan.profile, budget_track_for(plan.questions), 1e-6))
    out = trained["out"]
    configs = {"base": out / "eval" / "base.yaml", "adapter": out / "baseline.yaml"}
    pair = evaluate_pair(tight, tmp_path / "eval", configs, REPORTER)
    show_pair(pair, tight, out, REPORTER)
    assert not pair.ok and pair.limited == {"base": "a time limit", "adapter": "a time limit"}
    for label in ("base", "adapter"):  # each run folder written and scored as far as it went
        results = json.loads((tmp_path / "eval" / label / "results.json").read_text())
        assert results["verdict"]["status"] == "timeout" and results["n_answered"] == pair.runs[label]["n_answered"]
    error = capsys.readouterr().err
    assert "a time limit ended the evaluations of base and adapter (profile phase2" in error
    assert f"--evaluate-only --output-dir {out} --eval-data {setup['eval']} --no-limits --overwrite" in error
    assert pair.record(tmp_path / "x")["runs"]["base"]["verdict"] == "timeout"
