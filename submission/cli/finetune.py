"""``python -m submission finetune``: LoRA / QLoRA on ShopBench-format data, into an adapter the baseline loads."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..training.command import finetune
from ..training.pipeline import Options
from . import output

PROG = "python -m submission finetune"
DESCRIPTION = "LoRA / QLoRA on ShopBench-format data, into an adapter the baseline loads."

EPILOG = """examples:
  python -m submission finetune --data my_train.json --output-dir adapters/try1
  python -m submission finetune --data a.json --data b.json --output-dir adapters/try2 --eval-data data/development.json
  python -m submission finetune --data my_train.json --output-dir adapters/try1 --resume    # after an interruption
  python -m submission finetune --data data/sample.json --output-dir adapters/smoke --max-steps 5 --merge
  python -m submission finetune --data my_train.json --output-dir adapters/qlora --config models/my_qlora.yaml
  python -m submission finetune --evaluate-only --output-dir adapters/try1 --eval-data data/development.json --no-limits

data: JSON Lines in development format (input_field, output_field, task_name, task_type, metric,
is_multiple_choice, track); the model learns to answer each prompt with the string that the official
parser reads back as output_field (generation: the first reference).

OUTPUT_DIR receives adapter_config.json and adapter_model.safetensors (the adapter), baseline.yaml (the
baseline's settings with it), training.json, loss_curve.png, checkpoints/ (what --resume continues),
merged/ with --merge, and with --eval-data eval/base/ and eval/adapter/ (run folders, as
local_evaluation.py writes them) and eval/compare.html. OUTPUT_DIR must be absent or empty, unless
--resume (an interrupted run's checkpoints) or --overwrite (removes what an earlier fine-tuning run wrote
there; never other files); the repository's own folders are refused.

exit status: 0 trained (and evaluated within the limits), or --resume found the run finished; 1 an
evaluation ended with a failure verdict (what it answered is scored and compared); 2 bad input or
configuration; 130 interrupted (continue with --resume).
"""


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", action="append", metavar="FILE",
                        help="training questions in development format; repeat for several files (required, "
                        "except with --evaluate-only)")
    parser.add_argument("--output-dir", required=True, metavar="DIR",
                        help="the adapter folder to write, e.g. adapters/try1")
    parser.add_argument("--eval-data", metavar="FILE", help="after training, evaluate the base model and the adapter "
                        "on this file and compare them; training questions also in it are refused")
    parser.add_argument("--config", metavar="YAML", help="fine-tuning settings (default: models/finetune.yaml)")
    parser.add_argument("--max-steps", type=int, metavar="N", help="stop after N optimizer steps (overrides epochs)")
    parser.add_argument("--seed", type=int, metavar="S", help="seed of LoRA's initialisation, dropout and data order "
                        "(default: the config's)")
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint in DIR/checkpoints "
                        "(a run that already reached its last step: says so, trains nothing)")
    parser.add_argument("--overwrite", action="store_true", help="DIR holds an earlier fine-tuning run: remove what "
                        "it wrote first (never other files); with --evaluate-only, replace DIR/eval")
    parser.add_argument("--evaluate-only", action="store_true", help="no training: evaluate the adapter in DIR "
                        "against its base on --eval-data and compare them")
    parser.add_argument("--merge", action="store_true", help="also write the base with the adapter merged in, as "
                        "safetensors, in DIR/merged")
    parser.add_argument("--allow-overlap", action="store_true", help="train on questions that are also in --eval-data")
    parser.add_argument("--no-limits", action="store_true", help="evaluate without the grader's limits and train "
                        "without its card's rules (default: phase2's, as local_evaluation.py: no bfloat16 or "
                        "FlashAttention-2, whatever this GPU allows); everything is still measured")
    output.add_flags(parser, "debug logging (transformers, peft, the kit), and the traceback of an error")
    return parser


def options_from(args: argparse.Namespace) -> Options:
    return Options(tuple(args.data or ()), Path(args.output_dir), args.eval_data, args.config, args.max_steps,
                   args.seed, args.resume, args.merge, args.allow_overlap, not args.no_limits, args.overwrite,
                   args.evaluate_only)


def check_flags(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Flags that cannot go together: argparse's usage error (exit 2) naming them."""
    if args.max_steps is not None and args.max_steps < 1:
        parser.error("--max-steps must be at least 1")
    if args.resume and args.overwrite:
        parser.error("--resume continues the run in --output-dir; --overwrite removes it: choose one")
    if args.evaluate_only:
        training = [flag for flag, given in (("--data", args.data), ("--resume", args.resume),
                                             ("--merge", args.merge), ("--max-steps", args.max_steps is not None))
                    if given]
        if training:
            parser.error(f"--evaluate-only trains nothing: drop {', '.join(training)}")
        if not args.eval_data:
            parser.error("--evaluate-only needs --eval-data FILE: the questions to evaluate the adapter on")
    elif not args.data:
        parser.error("--data FILE is required (the training questions), except with --evaluate-only")


def main(argv: list[str], prog: str = PROG) -> int:
    """0 trained (and evaluated within the limits), 1 an evaluation failed its limits, 130 interrupted (bad
    input: a KitError, 2 in ``cli.main``)."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    check_flags(parser, args)
    reporter = output.setup(args.verbose, args.quiet)
    try:
        return finetune(options_from(args), reporter)
    except KeyboardInterrupt:
        if args.evaluate_only:
            reporter.error("\ninterrupted: nothing was trained; the evaluation so far is in "
                           f"{Path(args.output_dir) / 'eval'}", prefix=False)
        else:
            how = "with --resume in place of --overwrite" if args.overwrite else "and --resume"
            reporter.error(f"\ninterrupted: the last checkpoint is in {Path(args.output_dir) / 'checkpoints'}; "
                           f"continue with the same command {how}", prefix=False)
        return 130
