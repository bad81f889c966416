#!/bin/sh
# benchmarks/gpu_check.py on a bare GPU machine, with benchmarks/out/gpu_carry (made here by
# benchmarks/gpu_carry.py) carried along: its wheels installed aside, its data and the MiniLM
# stand-in on the path. On a machine where the project is installed, run gpu_check.py directly.
C=benchmarks/out/gpu_carry
if [ -d "$C" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/pw-site "$C"/wheels/*.whl || exit 1
  export PYTHONPATH="/tmp/pw-site:$PWD/$C/site${PYTHONPATH:+:$PYTHONPATH}" PATCHWORK_FASHION_MNIST="$PWD/$C/fashion-mnist"
fi
export PYTHONUNBUFFERED=1
exec python3 benchmarks/gpu_check.py --out "${OUT:-benchmarks/out}/gpu_check.json" "$@"
