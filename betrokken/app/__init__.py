"""The top floor: what a person starts (the ``betrokken`` command, the demo, the test and bench
cluster, network init, operations and the doctor). It may import every part below it; nothing
below imports it (the layers contract in pyproject.toml).
"""
