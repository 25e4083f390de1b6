# syntax=docker/dockerfile:1
# One image for every process in docker-compose.yml: the API (default command),
# workers, the one-shot migration and rq-dashboard (the `ops` extra).

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY . .
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install ".[ops]" -c constraints.txt

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN groupadd --system --gid 10001 escalations \
 && useradd --system --uid 10001 --gid escalations --create-home --home-dir /home/escalations escalations
COPY --from=build /opt/venv /opt/venv
USER escalations
WORKDIR /home/escalations
EXPOSE 8000
# The slim image has no curl; workers and the migration override this in compose.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["escalations", "api", "--host", "0.0.0.0", "--port", "8000"]
