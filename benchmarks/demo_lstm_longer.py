"""Re-train the LSTM baseline of a finished `stefaland demo` run with another step budget / evaluation interval.

The demo's LSTM row trains to early stopping (patience 4 evaluations every 50 steps). This script checks
how sensitive that comparison is to the baseline's training budget, on the same split and data:

    python benchmarks/demo_lstm_longer.py --demo stefaland-demo --max-steps 2000 --eval-steps 100
"""

import argparse
from pathlib import Path

from stefaland_hf.experiments.demo import finetune_arguments, load_finished_demo
from stefaland_hf.training.finetune import finetune


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo", required=True, help="output folder of `stefaland demo`")
    parser.add_argument("--max-steps", type=int, default=2000)
    parser.add_argument("--eval-steps", type=int, default=100)
    parser.add_argument("--patience", type=int, default=4)
    parser.add_argument("--cache-dir", default=None)
    args = parser.parse_args()

    demo = Path(args.demo)
    preset, dataset, split = load_finished_demo(demo, args.cache_dir)
    folder = demo / f"direct_{args.max_steps}_every_{args.eval_steps}"
    finetune_args = finetune_arguments(
        preset, folder, "direct", disable_tqdm=True, max_steps=args.max_steps, eval_steps=args.eval_steps, patience=args.patience, overwrite=True
    )
    result = finetune(demo / "pretraining" / "model", dataset, split, finetune_args)
    summary = result["summary"]
    print(f"LSTM baseline, <= {args.max_steps} steps, evaluated every {args.eval_steps}: stopped at {result['steps']} steps "
          f"({result['train_seconds']} s); median NSE {summary['nse']:.3f}, KGE {summary['kge']:.3f}, RMSE {summary['rmse']:.3f}")


if __name__ == "__main__":
    main()
