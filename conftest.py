# Runs from the repository use the plugin even when the package is not installed; when it is
# installed, its pytest11 entry point has the same name, so pytest loads it once.
pytest_plugins = ["conformance.plugin"]
