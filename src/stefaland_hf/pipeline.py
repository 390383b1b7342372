"""The ``"streamflow-prediction"`` task of ``transformers.pipeline``: a forcing table (and attributes) in, a table out.

Registered when ``stefaland_hf`` is imported::

    pipe = transformers.pipeline("streamflow-prediction", model=model_or_folder)
    table = pipe(forcings, attributes={"latitude": 44.6, "area": 573.6})

``model`` is a loaded model (a task model, or a resConn ``PeftModel``), a complete model folder or a finetuning run's
``adapter/`` folder, loaded as :func:`stefaland_hf.predict_streamflow` loads them (:class:`StreamflowModelLoader`): an
adapter on the base its ``finetuning.json`` names, refused on another encoder, and predicted with the windows it was
finetuned with. The work is :func:`stefaland_hf.experiments.tables.predict_streamflow` (imported when a pipeline runs).
"""

from __future__ import annotations

from transformers import Pipeline
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


class StreamflowModelLoader:
    """The model class ``transformers.pipeline`` loads a ``streamflow-prediction`` model folder with.

    For an adapter folder transformers would build the base from the base's config, which names no targets, and then
    fail; this loads the folder as :func:`stefaland_hf.predict_streamflow` does (adapter or complete model, its
    ``finetuning.json`` kept for the windows and in-sample days). The options transformers passes besides ``dtype``
    (the base's config, revision, token) are its own business for the base; the folder names its base itself.
    """

    @classmethod
    def from_pretrained(cls, name, *, dtype=None, **transformers_options):
        import torch

        from .experiments.tables import load_model

        model = load_model(name)[0]
        return model.to(dtype) if isinstance(dtype, torch.dtype) else model


PIPELINE_REGISTRY.register_pipeline(
    TASK, pipeline_class=StreamflowPredictionPipeline, pt_model=StreamflowModelLoader, type="multimodal"
)
