"""stefaland-hf: the StefaLand land-surface foundation model as Hugging Face software.

Importing the package registers the StefaLand classes with the transformers Auto classes, so
``AutoModel.from_pretrained(...)`` works on StefaLand folders without ``trust_remote_code``, and writes the shipped
models into the HF cache under their short names (``stefaland_hf.hub.zoo_cache``).
"""

import transformers

from .configuration_stefaland import StefaLandConfig
from .modeling_stefaland import (
    AUTO_CLASSES,
    StefaLandForPretraining,
    StefaLandForStaticRegression,
    StefaLandForTimeSeriesRegression,
    StefaLandModel,
    StefaLandPreTrainedModel,
)
from .hub.names import from_pretrained
from .hub.zoo_cache import install_shipped_models
from .peft_adapters import ResConnConfig
from .experiments.tables import predict_streamflow
from .pipeline import StreamflowPredictionPipeline
from .variables import VARIABLES, align_variables, get_variable
from .version import __version__

# One table (modeling_stefaland.AUTO_CLASSES) for both ways of loading: the Auto classes here, and the auto_map with
# the code that saved folders carry, so that trust_remote_code=True works without this package.
transformers.AutoConfig.register("stefaland", StefaLandConfig, exist_ok=True)
StefaLandConfig.register_for_auto_class()
for _auto_name, _model_class in AUTO_CLASSES.items():
    getattr(transformers, _auto_name).register(StefaLandConfig, _model_class, exist_ok=True)
    _model_class.register_for_auto_class(_auto_name)
# The shipped weights as HF-cache entries of their short names: AutoModel.from_pretrained("stefaland-base") anywhere.
install_shipped_models()

__all__ = [
    "StefaLandConfig",
    "StefaLandModel",
    "StefaLandPreTrainedModel",
    "StefaLandForPretraining",
    "StefaLandForTimeSeriesRegression",
    "StefaLandForStaticRegression",
    "ResConnConfig",
    "StreamflowPredictionPipeline",
    "predict_streamflow",
    "from_pretrained",
    "VARIABLES",
    "align_variables",
    "get_variable",
]

