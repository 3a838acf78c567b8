"""`probe analyse` and `probe compare`, and the analysis settings they share."""
from __future__ import annotations

import argparse

from probe.app.commands import arguments, command
from probe.app.flags import (Choices, add_allow_untrained, add_classifier_option, add_field, comma_list, default_of,
                             deprecated, int_pair, parse_options)
from probe.errors import ConfigError

# The library is imported inside the functions: `probe --help` imports this module and must not load torch.


def _analysis_settings_args(parser: argparse.ArgumentParser) -> None:
    """The settings `probe analyse` and `probe compare` share (AnalyseConfig's, ShiftSettings', AttributionSettings')."""
    from probe.analyses.config import AnalyseConfig, AttributionSettings, RemovalSettings, ShiftSettings

    add_field(parser, AnalyseConfig, "band_sets", choices=Choices(_band_set_names, multiple=True),
              help="band sets, comma-separated: %(choices)s")
    add_field(parser, ShiftSettings, "correction", choices=Choices(_correction_names),
              help="multiple-test correction across bands: %(choices)s")
    add_field(parser, ShiftSettings, "n_boot", "--bootstrap", help="bootstrap resamples for the confidence intervals")
    add_field(parser, ShiftSettings, "level", help="confidence level of the intervals")
    add_field(parser, ShiftSettings, "threshold_db", help="shift beyond which a band counts as suppressed/boosted")
    add_field(parser, ShiftSettings, "noise_floor_db",
              help="bands this far below the loudest band of the originals get no verdict (their dB ratios mean nothing)")
    add_field(parser, ShiftSettings, "clip_floor_db", type=float,
              help="per clip, bands this far below the clip's loudest band are left out of the band-shift means "
                   "(they held next to nothing); a negative value keeps every clip")
    add_field(parser, AttributionSettings, "methods", choices=Choices(_attribution_names, multiple=True),
              help="attribution methods, comma-separated (%(choices)s), or none")
    add_field(parser, AttributionSettings, "max_clips", "--attribution-clips", type=int,
              help="attribute at most this many clips per run", default_help="64 on a GPU, 16 on a CPU")
    add_field(parser, AttributionSettings, "max_memory_gb", "--max-memory", type=float,
              help="GB the attributions may hold at once; each pass through the classifier carries what fits",
              default_help="half the GPU on CUDA; a quarter of the RAM, at most 4, on a CPU")
    add_field(parser, AttributionSettings, "ig_steps", type=int, help="integrated gradients: interpolation steps per clip",
              default_help="chosen from 4, 8, ..., 128 by a walk from 16 that keeps the median completeness "
                           "error within --ig-max-error")
    add_field(parser, AttributionSettings, "ig_max_error", type=float,
              help="integrated gradients: the median relative completeness error the steps are chosen to stay within")
    add_field(parser, AttributionSettings, "completeness_clips", type=int,
              help="integrated gradients: clips the completeness error is measured on")
    add_field(parser, AttributionSettings, "shap_samples", help="GradientSHAP: samples per clip")
    add_field(parser, AttributionSettings, "occlusion_patch", help="occlusion: mel bins,frames per occluded patch")
    add_field(parser, AttributionSettings, "sanity_clips",
              help="clips of the randomisation check, the first attributed (its verdict needs at least 8: with fewer, "
                   "0 included, it is not run)")
    add_field(parser, AttributionSettings, "randomisation_stages",
              help="cascading stages of the randomisation check (each costs one attribution pass per method)")
    add_field(parser, AnalyseConfig, "examples", type=str, help="validation positions kept as audio, comma-separated",
              default_help="the study's on ESC-50, else the first clip of each class")
    add_field(parser, AnalyseConfig, "residuals", choices=["examples", "all"],
              help="write the residual audio (original - finetuned reconstruction) for the examples or all clips")
    add_field(parser, AnalyseConfig, "seed", help="seeds every random draw of the analysis")
    add_field(parser, AnalyseConfig, "device", help="auto, cpu, cuda, ...")
    add_field(parser, AnalyseConfig, "budget_minutes", type=float,
              help="say so, with the cheaper choices, when the attributions' plan exceeds this many minutes")
    add_allow_untrained(parser)
    parser.add_argument("--attribution-store", metavar="DIR", default="auto",
                        help="keep the originals' attribution maps and the randomisation checks here, for the runs "
                             "behind the same classifier and for later analyses; none: keep nothing (default: "
                             "$PROBE_HOME/attributions)")
    answer = parser.add_argument_group("the answer's removal checks")
    add_field(answer, RemovalSettings, "margin_points", "--removal-margin",
              help="a band removed from the originals that costs less than this many points (accuracy, or agreement "
                   "without labels) can be done without; more, is needed")
    add_field(answer, RemovalSettings, "max_sets", "--removal-sets",
              help="at most this many removals per classifier (one classifier pass over the clips each)")
    answer.add_argument("--no-answer", action="store_true",
                        help="no answer and no removal checks (they need the classifier: seconds per removal on a CPU "
                             "for small networks)")


def _band_set_names() -> list[str]:
    from probe.analyses.bands import BAND_SETS

    return BAND_SETS.names()


def _correction_names() -> list[str]:
    from probe.analyses.stats import CORRECTIONS

    return list(CORRECTIONS)


def _attribution_names() -> list[str]:
    from probe.analyses.attribution import ATTRIBUTION_METHODS

    return ATTRIBUTION_METHODS.names()


def _analyse_config(args: argparse.Namespace, runs: tuple[str, ...], transfer: bool):
    """The AnalyseConfig the parsed analysis settings describe, its names checked."""
    from probe.analyses.analyse import check_names
    from probe.analyses.config import AnalyseConfig, AttributionSettings, RemovalSettings, ShiftSettings

    try:
        examples = tuple(int(i) for i in comma_list(args.examples)) if args.examples else None
    except ValueError:
        raise ConfigError(None, f"--examples takes comma-separated integers, got {args.examples!r}") from None
    config = AnalyseConfig(
        runs=runs, out=args.out, band_sets=args.band_sets,
        shifts=ShiftSettings(n_boot=args.n_boot, level=args.level, correction=args.correction,
                             threshold_db=args.threshold_db, noise_floor_db=args.noise_floor_db,
                             clip_floor_db=None if args.clip_floor_db is None or args.clip_floor_db < 0 else args.clip_floor_db),
        attributions=AttributionSettings(methods=args.methods, max_clips=args.max_clips, max_memory_gb=args.max_memory_gb,
                                         ig_steps=args.ig_steps, ig_max_error=args.ig_max_error,
                                         completeness_clips=args.completeness_clips, shap_samples=args.shap_samples,
                                         occlusion_patch=int_pair(args.occlusion_patch, "--occlusion-patch"),
                                         sanity_clips=args.sanity_clips, randomisation_stages=args.randomisation_stages),
        examples=examples, residuals=args.residuals, transfer=transfer, seed=args.seed, device=args.device,
        progress=not args.quiet, allow_untrained=args.allow_untrained,
        removal=None if args.no_answer else RemovalSettings(margin_points=args.margin_points, max_sets=args.max_sets),
        attribution_store=None if args.attribution_store == "none" else args.attribution_store,
        budget_minutes=args.budget_minutes,
    )
    check_names(config)
    return config


def _analyse_args(parser: argparse.ArgumentParser) -> None:
    from probe.analyses.config import AnalyseConfig

    parser.add_argument("runs", nargs="+", help="complete finetune run directories (one per classifier/AE setting)")
    add_field(parser, AnalyseConfig, "out", help="the analysis folder (replaced atomically)")
    add_field(parser, AnalyseConfig, "transfer", help="the cross-classifier transfer matrix")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the attributions' plan (clips left to attribute, time per method, timed on one "
                             "clip) and stop; writes nothing")
    _analysis_settings_args(parser)


@command("analyse", "band-energy shifts, spectra, accuracy, attributions and transfer from finetune runs",
         order=80, aliases=("analyze",))
@arguments(_analyse_args)
def run_analyse(args: argparse.Namespace) -> int:
    """Analyse the finetune runs into one analysis folder."""
    from probe.analyses.analyse import analyse, plan

    config = _analyse_config(args, tuple(args.runs), transfer=args.transfer)
    if args.dry_run:
        print("\n".join(plan(config)))
        return 0
    out = analyse(config)
    print(f"probe analyse: wrote {out}")
    return 0


def _compare_args(parser: argparse.ArgumentParser) -> None:
    from probe.analyses.config import CompareConfig

    parser.add_argument("originals", help="folder of original audio (a folder per class gives per-class tables)")
    parser.add_argument("processed", help="folder of processed audio, same relative paths (the extension may differ)")
    add_field(parser, CompareConfig, "out", help="the analysis folder (replaced atomically); `probe report` reads it")
    add_field(parser, CompareConfig, "classifier", type=str,
              help="also score a classifier on both sides (a name from `probe models`, or hf:PATH_OR_REPO)")
    add_field(parser, CompareConfig, "classifier_weights", type=str, help="the classifier's checkpoint")
    deprecated(parser, "--weights", "--classifier-weights", dest="classifier_weights")
    add_classifier_option(parser)
    add_field(parser, CompareConfig, "categories_csv", "--categories", type=str, help="a class,category CSV for the class folders")
    add_field(parser, CompareConfig, "sample_rate", type=int, help="analysis rate",
              default_help="the classifier's, else the first original's")
    parser.add_argument("--max-lag-ms", type=float, metavar="MS", default=1000 * default_of(CompareConfig, "max_lag_seconds"),
                        help=f"search a delay of the processed side up to this "
                             f"(default: {1000 * default_of(CompareConfig, 'max_lag_seconds'):g})")
    _analysis_settings_args(parser)


@command("compare", "the same analyses for any pair of original and processed audio folders (codecs, denoisers, ...)",
         order=90)
@arguments(_compare_args)
def run_compare(args: argparse.Namespace) -> int:
    """Analyse a pair of original and processed folders into one analysis folder."""
    from probe.analyses.compare import CompareConfig, compare

    config = CompareConfig(args.originals, args.processed, args.out, args.classifier, args.classifier_weights,
                           args.categories_csv,
                           args.sample_rate, args.max_lag_ms / 1000, device=args.device,
                           classifier_options=parse_options(args.classifier_option, "--classifier-option"))
    out = compare(config, _analyse_config(args, (args.originals, args.processed), transfer=False))
    print(f"probe compare: wrote {out}; render it with `probe report {out}`")
    return 0
