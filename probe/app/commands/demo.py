"""`probe demo`: the flags of the offline demo; the demo itself is `probe.app.demo`."""
from __future__ import annotations

import argparse

from probe.app.commands import arguments, command
from probe.app.flags import add_field

# The library is imported inside the functions: `probe --help` imports this module and must not load torch.


def _demo_args(parser: argparse.ArgumentParser) -> None:
    from probe.app.demo import DemoConfig
    from probe.train.objectives import OBJECTIVES

    add_field(parser, DemoConfig, "out", help="everything the demo writes goes under this folder")
    add_field(parser, DemoConfig, "seed", help="seeds the data, the classifiers, the probes and the analyses")
    add_field(parser, DemoConfig, "data", type=str, help="esc50:DIR runs the study's grid on ESC-50 instead of the synthetic demo")
    add_field(parser, DemoConfig, "weights_dir", type=str,
              help="with --data: the folder holding the classifier and AE checkpoints")
    add_field(parser, DemoConfig, "device", help="auto, cpu, cuda, ...")
    add_field(parser, DemoConfig, "objective", choices=OBJECTIVES.names(),
              help="the probes' objective; fidelity probes the same planted CNNs with the labels withheld, beside the "
                   "labelled runs (runs-fidelity/, report-fidelity/, planted-fidelity.json)")


@command("demo", "the whole study offline in minutes: planted classifiers, probes, analyses and the HTML report",
         order=130)
@arguments(_demo_args)
def run_demo(args: argparse.Namespace) -> int:
    """Run the demo and print where its report is."""
    from probe.app.demo import DemoConfig, run_demo as demo
    from probe.app.study import run_study

    index = (run_study if args.data else demo)(DemoConfig(out=args.out, seed=args.seed, data=args.data, weights_dir=args.weights_dir, device=args.device,
                            objective=args.objective, progress=not args.quiet))
    print(f"probe demo: the report is {index.resolve().as_uri()}")
    return 0
