"""A Beam runner from outside Beam, with an options class of its own, for the test that such a runner's options
pass pseudo_label_beam.py's check although nothing imported its module yet (tests/test_beam_pipeline.py).
It runs the pipeline on Beam's FnApiRunner."""

from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.portability.fn_api_runner import FnApiRunner


class RecordingOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--recording_tag", default="", help="A name this runner logs.")


class RecordingRunner(FnApiRunner):
    """FnApiRunner under another name (a stand-in for a runner package such as Beam's Dask runner)."""
