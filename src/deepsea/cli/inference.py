"""`deepsea predict`: a trained model's class probabilities for one subset, with test-time augmentation."""

from __future__ import annotations

import argparse
import logging

from deepsea.cli.common import AddCommand, add_orientation_options, claim_gpu, orientation_of

log = logging.getLogger("deepsea")


def _cmd_predict(a: argparse.Namespace) -> None:
    from deepsea.inference.predict import PredictOptions, predict
    from deepsea.inference.views import TTASettings, oriented_views
    from deepsea.records import from_dict, load_json_argument

    tta = from_dict(TTASettings, load_json_argument(a.tta, "--tta"), "tta") if a.tta else None
    tta = oriented_views(tta, orientation_of(a)) if tta else None
    claim_gpu(a.device)
    options = PredictOptions(tta, a.batch_size, a.device, a.threads, a.workers)
    predict(a.model, a.data, a.subset, a.out, a.out_centre, split_path=a.split, options=options)


def add_commands(add: AddCommand) -> None:
    p = add("predict", _cmd_predict, "class probabilities of a trained model for one subset")
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True, help="packed data (.npz): training data for train/valid, test data")
    p.add_argument("--subset", required=True, choices=["train", "valid", "test"])
    p.add_argument("--split", help="split JSON (needed for train/valid)")
    p.add_argument("--out", required=True, help="predictions .npy to write (meta JSON beside it)")
    p.add_argument("--out-centre", help="also write the centre view's predictions here")
    p.add_argument("--tta", help="test-time augmentation settings as JSON, or a JSON file (default: centre view)")
    p.add_argument("--batch-size", type=int, default=128, help="views per forward pass")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--workers", type=int, default=0, help="processes warping views while the model predicts")
    add_orientation_options(p)
