"""MLflow models-from-code entry of a custseg segmentation model.

MLflow stores this file with every logged model and runs it on load; the model's only
state is its JSON description (artifact ``segment_model``), read by
:class:`~custseg.domain.segment_model.SegmentModel`, whose module ships with the model
(``code_paths``). Loading therefore unpickles nothing (it works with
``MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false``) and needs neither custseg nor
scikit-learn: numpy, pandas and mlflow are enough.

``predict`` takes a DataFrame with the model's input columns and returns, per row, the
segment id and name (columns ``segment`` and ``segment_name``). It first checks every
row against the data schema the model was fitted under (ranges, allowed values): a row
outside it fails the whole call with an ``INVALID_PARAMETER_VALUE`` error naming the
rows, columns, values and reasons, which ``mlflow models serve`` answers with HTTP 400.
Batch (``custseg-predict``) and REST scoring share this check.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.pyfunc import PythonModel

try:  # the copy shipped with the model: a fresh environment needs no custseg
    from segment_model import ARTIFACT_KEY, REFERENCE_KEY, InputError, SegmentModel
except ImportError:  # logging from custseg itself
    from custseg.domain.segment_model import ARTIFACT_KEY, REFERENCE_KEY, InputError, SegmentModel


class SegmentationModel(PythonModel):
    """Scores customers with the :class:`SegmentModel` stored as the model's artifact."""

    def load_context(self, context) -> None:
        text = Path(context.artifacts[ARTIFACT_KEY]).read_text(encoding="utf-8")
        self.segment_model = SegmentModel.from_json(text)
        # what its training customers looked like (JSON text), for custseg-monitor; None
        # for a model logged without one
        reference = context.artifacts.get(REFERENCE_KEY)
        self.reference = Path(reference).read_text(encoding="utf-8") if reference else None

    # a DataFrame hint: MLflow then validates against the explicit signature, not the hint
    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None):
        try:
            return self.segment_model.score(model_input)
        except InputError as exc:  # HTTP 400 when served
            raise MlflowException(str(exc), error_code=INVALID_PARAMETER_VALUE) from None


mlflow.models.set_model(SegmentationModel())
