app = 1 / 0   # an app whose import fails (tests/test_app.py)
