# Derived by `python -m codegen` from src/beanstalkm/_async/. DO NOT EDIT; edit the source and run `make generate`.
"""The sync flavour: derived from the asyncio source (``beanstalkm._async``) by ``python -m codegen``."""
