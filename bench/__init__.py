"""The suite's performance benchmark (issue 8): ``python -m bench``, see ``bench/run.py``."""
