"""The ``"streamflow-prediction"`` task of ``transformers.pipeline``: a forcing table (and attributes) in, a table out.

Registered when ``stefaland_hf`` is imported::

    pipe = transformers.pipeline("streamflow-prediction", model=model_or_folder)
    table = pipe(forcings, attributes={"latitude": 44.6, "area": 573.6})

``model`` is a loaded model (a task model, or a resConn ``PeftModel``) or a complete model folder; transformers'
``pipeline`` cannot load an adapter folder onto its base (it asks the base for targets it does not have), so pass an
adapter loaded, or give the folder to :func:`stefaland_hf.predict_streamflow`, which loads either. The work is
:func:`stefaland_hf.experiments.tables.predict_streamflow` (imported when a pipeline runs).
"""

from __future__ import annotations

from transformers import AutoModelForTimeSeriesPrediction, Pipeline
from transformers.pipelines import PIPELINE_REGISTRY

TASK = "streamflow-prediction"


class StreamflowPredictionPipeline(Pipeline):
    """``pipe(forcings, attributes=None, warmup=180, seq_len=365, rename=None, batch_size=64)`` -> DataFrame of daily
    streamflow (mm/day)."""

    _load_tokenizer = False
    _load_processor = False
    _load_image_processor = False
    _load_video_processor = False
    _load_feature_extractor = False

    def _sanitize_parameters(self, attributes=None, warmup=None, seq_len=None, rename=None, batch_size=None):
        options = {"attributes": attributes, "warmup": warmup, "seq_len": seq_len, "rename": rename, "batch_size": batch_size}
        return {k: v for k, v in options.items() if v is not None}, {}, {}

    def preprocess(self, forcings, **options):
        return {"forcings": forcings, **options}

    def _forward(self, inputs):
        from .experiments.tables import predict_streamflow

        return predict_streamflow(self.model, **inputs)

    def postprocess(self, table):
        return table


PIPELINE_REGISTRY.register_pipeline(TASK, pipeline_class=StreamflowPredictionPipeline, pt_model=AutoModelForTimeSeriesPrediction, type="multimodal")
