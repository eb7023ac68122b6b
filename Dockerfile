# crisiswatch production image (see docs/deploy.md).
#
#   docker build -t crisiswatch .                    # the service: ENTRYPOINT ["crisiswatch"]
#   docker build --target jupyter -t crisiswatch-jupyter .   # JupyterLab for the analyst notebooks
#
# The last stage ("crisiswatch") is the default target.  Only the package sources
# are copied (not .git, virtualenvs or test caches), so no .dockerignore is needed.

ARG PYTHON_IMAGE=python:3.11-slim

# ---- build: install crisiswatch (+ the notebooks extra) into a virtualenv ----------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# pyproject.toml names README.md as the package readme, so it is needed to build.
COPY pyproject.toml README.md ./
COPY connectors ./connectors
COPY detectors ./detectors
COPY listener ./listener
COPY crisiswatch ./crisiswatch
RUN pip install --no-cache-dir ".[notebooks]"

# ---- build-jupyter: the same virtualenv plus JupyterLab ----------------------------
FROM build AS build-jupyter
RUN pip install --no-cache-dir "jupyterlab>=4,<5"

# ---- runtime: what both images share (non-root user, /data) ------------------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# uid 1000 matches the first user of most Linux hosts, so bind-mounted directories
# (./notebooks, ./deploy/in) stay readable and writable without chown.
RUN groupadd --gid 1000 crisiswatch \
 && useradd --uid 1000 --gid crisiswatch --create-home --home-dir /home/crisiswatch \
        --shell /usr/sbin/nologin crisiswatch \
 && mkdir -p /data /etc/crisiswatch \
 && chown crisiswatch:crisiswatch /data
# A named volume mounted at /data starts as a copy of this directory, so it is owned by
# crisiswatch (no VOLUME instruction: it would leave an anonymous volume per one-shot run).

# ---- jupyter: JupyterLab serving /work/notebooks ----------------------------------
FROM runtime AS jupyter
COPY --from=build-jupyter /opt/venv /opt/venv
RUN mkdir -p /work/notebooks && chown crisiswatch:crisiswatch /work/notebooks
USER crisiswatch
WORKDIR /work/notebooks
EXPOSE 8888
# The token comes from the JUPYTER_TOKEN environment variable (read by jupyter_server).
ENTRYPOINT ["jupyter", "lab"]
CMD ["--ip=0.0.0.0", "--port=8888", "--no-browser", "--ServerApp.root_dir=/work/notebooks"]

# ---- crisiswatch: the service (default target) ------------------------------------
FROM runtime AS crisiswatch
COPY --from=build /opt/venv /opt/venv
USER crisiswatch
WORKDIR /home/crisiswatch
ENTRYPOINT ["crisiswatch"]
CMD ["--help"]
