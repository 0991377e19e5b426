"""VGG-16 (reference.models.vgg16, random weights, 1x3x224x224) on the reference engine: memory held
right after building, forward time, backward time and their ratio.  Each measurement runs in a
fresh process (``ru_maxrss`` is a high-water mark)::

    PYTHONPATH=$PWD python scripts/measure_vgg16.py [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time, tracemalloc
import numpy as np
tracemalloc.start()
from reference import Net
from reference.models import vgg16
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
net = Net(vgg16(), seed=0)
built, _ = tracemalloc.get_traced_memory()
params = sum(b.nbytes for bs in net.params.values() for b in bs)
tracemalloc.stop()
x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
fwd, bwd = [], []
for _ in range(int(sys.argv[1])):
    t = time.perf_counter(); out = net.forward(data=x); fwd.append(time.perf_counter() - t)
    t = time.perf_counter(); net.backward({"fc8": np.ones_like(out["fc8"])})
    bwd.append(time.perf_counter() - t)
print(json.dumps({"built_mb": built / 2**20, "params_mb": params / 2**20,
                  "forward_s": min(fwd), "backward_s": min(bwd)}))
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=2, help="forward+backward passes (the fastest is kept)")
    args = ap.parse_args(argv)
    out = subprocess.run([sys.executable, "-c", CHILD, str(args.repeat)], capture_output=True, text=True)
    if out.returncode:
        print(out.stderr.strip().splitlines()[-1], file=sys.stderr)
        return 1
    r = json.loads(out.stdout)
    r["backward_over_forward"] = r["backward_s"] / r["forward_s"]
    print(json.dumps(r, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
