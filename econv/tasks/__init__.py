"""The paper's other experiments at small scale, one module per task, each with
``run(out, backend, quick, progress, log) -> dict`` (``econv demo --task T``):

- :mod:`econv.tasks.classification`: image categorization (section 3.3), accuracy;
- :mod:`econv.tasks.regression`: apparent age estimation (section 3.4), here the digit's size, MAE;
- :mod:`econv.tasks.localization`: unsupervised object localization (section 3.2), accuracy at IoU 0.5.

Shared pieces (the net, the dense net with its global average pooling): :mod:`econv.tasks.common`.
"""

TASKS = ("classification", "regression", "localization")
