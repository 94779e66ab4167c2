"""A participant's first hour: every usual mistake answered before anything runs, in the participant's
terms (the first-hour issue). Real models written as a participant would, real processes and files."""

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from kit_paths import ROOT, SAMPLE_DATA

import local_evaluation
from submission.errors import ConfigError
from submission.grading.container_contract import container_job
from submission.harness.gpu import host_gpu_count
from submission.harness.predictions import PredictionWriter
from submission.harness.profiles import UNLIMITED
from submission.harness.stdio import run_stdio
from submission.scoring.data import load_questions, sample_questions

DUMMY = "models.dummy_model:DummyModel"
MODEL = """
    import os
    from models.base_model import ShopBenchBaseModel

    def answer_all(prompts):
        return ["1"] * len(prompts)

    class MyModel(ShopBenchBaseModel):
        def __init__(self):
            self.batches = 0

        def get_batch_size(self):
            return 4

        def batch_predict(self, batch, is_multiple_choice):
            self.batches += 1
            if os.environ.get("FAIL_AT_ONCE") or self.batches > int(os.environ.get("FAIL_AFTER_BATCHES", "1000")):
                raise RuntimeError("weights not found: /models/mine")
            if os.environ.get("BREAK_INTERFACE"):
                return answer_all(batch["prompt"])[:-1]
            return answer_all(batch["prompt"])
"""


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A participant's code: participant/my_model.py (a folder beside the kit's models/, which a participant
    would edit in their own copy), first on the import path."""
    (tmp_path / "repo" / "participant").mkdir(parents=True)
    (tmp_path / "repo" / "participant" / "my_model.py").write_text(textwrap.dedent(MODEL))
    monkeypatch.syspath_prepend(str(tmp_path / "repo"))
    yield tmp_path / "repo"
    for name in [m for m in sys.modules if m.startswith("participant")]:
        del sys.modules[name]


def evaluate(tmp_path, *args):
    out = tmp_path / "out"
    return local_evaluation.main(["--data", str(SAMPLE_DATA), "--no-limits", "--output-dir", str(out), *args]), out


# ---------------------------------------------------------------- 1-3. naming the model


def test_an_instance_in_user_config_is_refused_with_exit_2_before_anything_runs(repo, tmp_path, capsys):
    (repo / "participant" / "my_config.py").write_text("from participant.my_model import MyModel\n\n"
                                                       "UserModel = MyModel()\n")
    code, out = evaluate(tmp_path, "--model", "participant.my_config:UserModel")
    err = capsys.readouterr().err
    assert code == 2 and "UserModel must be a class (the grader calls UserModel() itself), not a MyModel instance; " \
        "write `UserModel = MyModel`, not `UserModel = MyModel()`" in err
    assert not out.exists() and "predicting" not in err


def test_the_container_loop_refuses_an_instance_as_a_configuration_error(tmp_path):
    """docker/entrypoint.py (the model's loop in the container), driven over its stdin and stdout by the judge."""
    (tmp_path / "app" / "participant").mkdir(parents=True)
    (tmp_path / "app" / "participant" / "inst.py").write_text("from models.dummy_model import DummyModel\n\n"
                                                              "UserModel = DummyModel()\n")
    questions = load_questions(SAMPLE_DATA)[:3]
    job = {**container_job("participant.inst:UserModel", 0, UNLIMITED), "repo": str(tmp_path / "app")}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "app"), str(ROOT)])}
    with PredictionWriter(tmp_path / "p.jsonl") as writer, \
            pytest.raises(ConfigError, match="UserModel must be a class"):
        run_stdio([sys.executable, str(ROOT / "docker" / "entrypoint.py")], questions, job, writer, env=env)


@pytest.mark.parametrize("spec, message", [
    ("participant.my_model:MyModle", "defines no 'MyModle' (for model 'participant.my_model:MyModle'); "
                                     "did you mean 'MyModel'? classes it defines: MyModel"),
    ("participant.my_model", "--model 'participant.my_model' names a module; write 'module:Class', e.g. "
                        "'participant.my_model:MyModel'; it defines MyModel"),
    ("participant/my_model.py:MyModel", "--model 'participant/my_model.py:MyModel': give the module's import path, "
                                        "not a file: 'participant.my_model:MyModel'"),
    ("models.my_modle:MyModel", "cannot import 'models.my_modle' (for model 'models.my_modle:MyModel'): no such "
                                "module"),
])
def test_model_path_mistakes_are_found_before_the_progress_bar_and_any_folder(repo, tmp_path, capsys, spec, message):
    code, out = evaluate(tmp_path, "--model", spec)
    err = capsys.readouterr().err
    assert code == 2 and message in err
    assert "predicting" not in err and not out.exists()


def test_a_module_that_raises_on_import_shows_the_participants_traceback_and_exits_2(repo, tmp_path, capsys):
    (repo / "participant" / "broken.py").write_text("import os\n\nraise ImportError('needs flash_attn')\n")
    code, out = evaluate(tmp_path, "--model", "participant.broken:M")
    err = capsys.readouterr().err
    assert code == 2 and "importing participant.broken:M raised ImportError: needs flash_attn" in err
    assert not out.exists()


# ---------------------------------------------------------------- 4-5. failures in the participant's terms


def test_a_broken_interface_is_one_line_without_a_traceback(repo, tmp_path, capfd, monkeypatch):
    monkeypatch.setenv("BREAK_INTERFACE", "1")
    code, _ = evaluate(tmp_path, "--model", "participant.my_model:MyModel")
    err = capfd.readouterr().err
    assert code == 1 and "batch 0: batch_predict returned 3 responses for 4 prompts" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("verbose", [False, True])
def test_an_exception_shows_the_participants_frames_not_the_kits_unless_verbose(repo, tmp_path, capfd, monkeypatch,
                                                                               verbose):
    monkeypatch.setenv("FAIL_AT_ONCE", "1")
    code, _ = evaluate(tmp_path, "--model", "participant.my_model:MyModel", *(["--verbose"] if verbose else []))
    err = capfd.readouterr().err
    assert code == 1 and "RuntimeError: weights not found: /models/mine" in err
    assert str(repo / "participant" / "my_model.py") in err
    assert ("submission/harness/child.py" in err) == verbose


def test_the_resume_hint_comes_only_when_answers_were_saved(repo, tmp_path, capfd, monkeypatch):
    monkeypatch.setenv("FAIL_AT_ONCE", "1")
    code, out = evaluate(tmp_path / "none", "--model", "participant.my_model:MyModel")
    err = capfd.readouterr().err
    assert code == 1 and "no question was answered before it" in err and "--resume" not in err
    monkeypatch.delenv("FAIL_AT_ONCE")
    monkeypatch.setenv("FAIL_AFTER_BATCHES", "2")  # two batches of 4 answered, then the third fails
    code, out = evaluate(tmp_path / "some", "--model", "participant.my_model:MyModel")
    err = capfd.readouterr().err
    assert code == 1 and "no question was answered before it" not in err
    assert f"every answer made before it is in {out / 'predictions.jsonl'}; continue with --resume {out}" in err
    assert len((out / "predictions.jsonl").read_text().splitlines()) == 8
    monkeypatch.delenv("FAIL_AFTER_BATCHES")
    assert local_evaluation.main(["--resume", str(out), "--no-limits"]) == 0  # the hint's command finishes the run
    results = json.loads((out / "results.json").read_text())
    assert results["verdict"]["status"] == "ok" and results["n_answered"] == results["n_questions"]


# ---------------------------------------------------------------- 6. --limit and --sample


def test_limit_says_it_takes_the_first_lines_and_sample_spreads_across_tasks(tmp_path, capsys):
    questions = load_questions(SAMPLE_DATA)
    tasks = {q.task_name for q in questions}
    code, out = evaluate(tmp_path, "--model", DUMMY, "--limit", "10")
    printed = capsys.readouterr().out
    assert code == 0 and "--limit 10: the first 10 questions of sample.json, from 2 tasks and 1 track of its " \
        f"{len(tasks)} tasks and 4 tracks; --sample 10 spreads them across every task" in printed
    code, out = evaluate(tmp_path / "s", "--model", DUMMY, "--sample", "20", "--seed", "5")
    results = json.loads((out / "results.json").read_text())
    assert code == 0 and results["n_questions"] == 20 and len(results["tasks"]) == len(tasks)
    assert results["sample"]["rows"] == [q.row for q in sample_questions(questions, 20, 5)]
    assert f"--sample 20: 20 questions from {len(tasks)} tasks and 4 tracks (seed 5)" in capsys.readouterr().out


def test_sampling_is_seeded_stratified_and_proportional():
    questions = load_questions(SAMPLE_DATA)
    sizes = {}
    for q in questions:
        sizes[q.task_name] = sizes.get(q.task_name, 0) + 1
    picked = sample_questions(questions, 30, seed=1)
    assert len(picked) == 30 and picked == sample_questions(questions, 30, seed=1)
    assert [q.row for q in picked] == sorted(q.row for q in picked)
    assert {q.task_name for q in picked} == set(sizes)
    counts = {t: sum(q.task_name == t for q in picked) for t in sizes}
    biggest, smallest = max(sizes, key=sizes.get), min(sizes, key=sizes.get)
    assert counts[biggest] >= counts[smallest] and all(counts[t] <= sizes[t] for t in sizes)
    assert picked != sample_questions(questions, 30, seed=2)
    assert len({q.task_name for q in sample_questions(questions, 3, seed=0)}) == 3  # fewer than tasks: one each
    assert sample_questions(questions, 1000, seed=0) == questions


# ---------------------------------------------------------------- 7-10. files, places, messages


def test_run_output_stays_out_of_git_and_the_image():
    assert "compare.html" in (ROOT / ".gitignore").read_text().split()
    for name in (".dockerignore", "docker/dockerignore.template"):
        lines = (ROOT / name).read_text().split()
        assert "runs" in lines and "**/compare.html" in lines, name


def test_the_evaluator_and_the_commands_work_from_any_folder(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(ROOT / "local_evaluation.py"), "--model", DUMMY, "--sample", "5",
                           "--output-dir", str(out)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    check = subprocess.run([sys.executable, "-m", "submission", "check", "--repo", str(ROOT), "--no-smoke"],
                           cwd=tmp_path, capture_output=True, text=True, env=clean, timeout=300)
    # the kit is installed (./setup.sh installs it editable), so the check runs from any folder, and passes
    assert check.returncode == 0, check.stdout + check.stderr
    assert re.search(r"^user_config +ok +UserModel = ", check.stdout, re.MULTILINE), check.stdout
    # the shipped aicrowd.json's placeholder author is a warning; no check may fail
    assert re.search(r"^(all checks passed|no check failed, but read the warning\(s\) of aicrowd\.json)",
                     check.stdout, re.MULTILINE) and " fail " not in check.stdout, check.stdout
    script = subprocess.run([str(Path(sys.executable).with_name("shopbench")), "--help"], capture_output=True,
                            text=True, cwd=tmp_path, timeout=60)  # the console script beside this interpreter
    assert script.returncode == 0 and all(f"  {name}  " in script.stdout for name in ("check", "compare", "report"))


def test_the_closing_lines_list_every_file_and_say_what_missing_gpus_mean(tmp_path, capsys):
    code, out = evaluate(tmp_path, "--model", DUMMY, "--sample", "5")
    printed = capsys.readouterr().out
    assert code == 0
    assert f"wrote results.json, predictions.jsonl, report.html, scores.png, run.json in {out}" in printed
    assert all((out / name).is_file() for name in ("results.json", "predictions.jsonl", "run.json"))
    code = local_evaluation.main(["--data", str(SAMPLE_DATA), "--model", DUMMY, "--sample", "5", "--output-dir",
                                  str(tmp_path / "limited")])
    printed = capsys.readouterr().out
    if host_gpu_count() == 0:
        assert code == 0 and "4 GPU(s) (this machine has none: the model runs on the CPU" in printed
    else:
        assert code == 0 and "this machine has none" not in printed


def test_an_empty_predictions_file_says_so_without_the_data_hint(tmp_path, capsys):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    code = local_evaluation.main(["--predictions", str(empty), "--output-dir", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "holds no predictions" in err and "--limit" not in err


def test_the_models_readme_ends_with_the_next_steps():
    tail = (ROOT / "models" / "README.md").read_text().split("## ")[-1]
    for command in ("python -m submission check", "python -m submission docker build",
                    "python -m submission docker run"):
        assert command in tail
