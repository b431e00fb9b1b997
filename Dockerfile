# One image for every Pystrument process; docker-compose.yml picks the command
# of each service. It installs the two distributions `make up` installs
# (./sdk and .), without the test tools of the [dev] extra.
# tests/integration/deploy/test_compose.py checks this file and the compose file.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LITELLM_LOCAL_MODEL_COST_MAP=True \
    PYSTRUMENT_HOME=/var/lib/pystrument

WORKDIR /opt/pystrument
COPY pyproject.toml README.md ./
COPY sdk ./sdk
COPY pystrument_lab ./pystrument_lab
COPY collector ./collector
COPY panel_apps ./panel_apps
COPY notebooks ./notebooks
RUN pip install --no-cache-dir ./sdk . \
    && useradd --system --home-dir /var/lib/pystrument --create-home pystrument

USER pystrument
WORKDIR /var/lib/pystrument
EXPOSE 8000 3000
CMD ["pystrument", "--help"]
