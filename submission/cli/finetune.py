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

data: JSON Lines in development format (input_field, output_field, task_name, task_type, metric,
is_multiple_choice, track); the model learns to answer each prompt with the string that the official
parser reads back as output_field (generation: the first reference).

OUTPUT_DIR receives adapter_config.json and adapter_model.safetensors (the adapter), baseline.yaml (the
baseline's settings with it), training.json, loss_curve.png, checkpoints/ (what --resume continues),
merged/ with --merge, and with --eval-data eval/base/ and eval/adapter/ (run folders, as
local_evaluation.py writes them) and eval/compare.html.

exit status: 0 trained (and evaluated within the limits); 1 an evaluation ended with a failure verdict;
2 bad input or configuration; 130 interrupted (continue with --resume).
"""


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", action="append", required=True, metavar="FILE",
                        help="training questions in development format; repeat for several files")
    parser.add_argument("--output-dir", required=True, metavar="DIR",
                        help="the adapter folder to write, e.g. adapters/try1")
    parser.add_argument("--eval-data", metavar="FILE", help="after training, evaluate the base model and the adapter "
                        "on this file and compare them; training questions also in it are refused")
    parser.add_argument("--config", metavar="YAML", help="fine-tuning settings (default: models/finetune.yaml)")
    parser.add_argument("--max-steps", type=int, metavar="N", help="stop after N optimizer steps (overrides epochs)")
    parser.add_argument("--seed", type=int, metavar="S", help="seed of LoRA's initialisation, dropout and data order "
                        "(default: the config's)")
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint in DIR/checkpoints")
    parser.add_argument("--merge", action="store_true", help="also write the base with the adapter merged in, as "
                        "safetensors, in DIR/merged")
    parser.add_argument("--allow-overlap", action="store_true", help="train on questions that are also in --eval-data")
    parser.add_argument("--no-limits", action="store_true", help="evaluate without the grader's limits and train "
                        "without its card's rules (default: phase2's, as local_evaluation.py: no bfloat16 or "
                        "FlashAttention-2, whatever this GPU allows); everything is still measured")
    output.add_flags(parser, "debug logging (transformers, peft, the kit), and the traceback of an error")
    return parser


def options_from(args: argparse.Namespace) -> Options:
    return Options(tuple(args.data), Path(args.output_dir), args.eval_data, args.config, args.max_steps, args.seed,
                   args.resume, args.merge, args.allow_overlap, not args.no_limits)


def main(argv: list[str], prog: str = PROG) -> int:
    """0 trained (and evaluated within the limits), 1 an evaluation failed its limits, 130 interrupted (bad
    input: a KitError, 2 in ``cli.main``)."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if args.max_steps is not None and args.max_steps < 1:
        parser.error("--max-steps must be at least 1")
    reporter = output.setup(args.verbose, args.quiet)
    try:
        return finetune(options_from(args), reporter)
    except KeyboardInterrupt:
        reporter.error(f"\ninterrupted: the last checkpoint is in {Path(args.output_dir) / 'checkpoints'}; continue "
                       "with the same command and --resume", prefix=False)
        return 130
