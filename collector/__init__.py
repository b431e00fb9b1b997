"""The collector: a thin FastAPI service that authenticates, validates and stores."""
