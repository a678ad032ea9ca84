# One image for the sweepctl server and its Ray workers (docker-compose.yml).
# CPU build of torch by default; for GPUs pass the matching PyTorch wheel index, e.g.
#   docker compose build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128
FROM python:3.11-slim

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 \
    SWEEPCTL_HOME=/runs \
    TOKENIZERS_PARALLELISM=false

WORKDIR /app
RUN pip install "torch==2.13.0" --index-url "$TORCH_INDEX"
COPY pyproject.toml README.md ./
COPY cli ./cli
COPY spec ./spec
COPY storage ./storage
COPY workers ./workers
COPY orchestrator ./orchestrator
COPY service ./service
RUN pip install ".[minilm]"
COPY sweeps ./sweeps

EXPOSE 8000
CMD ["sweepctl", "serve", "--host", "0.0.0.0"]
