"""numba_kernels tests: the CUDA kernels run on numba's simulator unless told otherwise.

``NUMBA_ENABLE_CUDASIM`` must be set before numba is imported; CI sets it (``.ci/run``), and this
conftest sets it by default for a plain ``pytest`` run too.  On a machine with a GPU, run with
``NUMBA_ENABLE_CUDASIM=0`` to test the kernels on the hardware.
"""

import os
import sys

if "numba" not in sys.modules:
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")
