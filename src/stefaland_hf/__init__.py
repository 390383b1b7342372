"""stefaland-hf: the StefaLand land-surface foundation model as Hugging Face software.

Importing the package registers the StefaLand classes with the transformers Auto classes, so
``AutoModel.from_pretrained(...)`` works on StefaLand folders without ``trust_remote_code``.
"""

from transformers import AutoConfig, AutoModel, AutoModelForPreTraining, AutoModelForTimeSeriesPrediction

from .configuration_stefaland import StefaLandConfig
from .modeling_stefaland import (
    StefaLandForPretraining,
    StefaLandForStaticRegression,
    StefaLandForTimeSeriesRegression,
    StefaLandModel,
    StefaLandPreTrainedModel,
)
from .hub.names import from_pretrained
from .peft_adapters import ResConnConfig
from .variables import VARIABLES, align_variables, get_variable

__version__ = "0.1.0"

AutoConfig.register("stefaland", StefaLandConfig, exist_ok=True)
AutoModel.register(StefaLandConfig, StefaLandModel, exist_ok=True)
AutoModelForPreTraining.register(StefaLandConfig, StefaLandForPretraining, exist_ok=True)
AutoModelForTimeSeriesPrediction.register(StefaLandConfig, StefaLandForTimeSeriesRegression, exist_ok=True)

# Saved folders carry their own code so that trust_remote_code=True works without this package.
StefaLandConfig.register_for_auto_class()
StefaLandModel.register_for_auto_class("AutoModel")
StefaLandForPretraining.register_for_auto_class("AutoModelForPreTraining")
StefaLandForTimeSeriesRegression.register_for_auto_class("AutoModelForTimeSeriesPrediction")
StefaLandForStaticRegression.register_for_auto_class("AutoModel")

__all__ = [
    "StefaLandConfig",
    "StefaLandModel",
    "StefaLandPreTrainedModel",
    "StefaLandForPretraining",
    "StefaLandForTimeSeriesRegression",
    "StefaLandForStaticRegression",
    "ResConnConfig",
    "from_pretrained",
    "VARIABLES",
    "align_variables",
    "get_variable",
]
