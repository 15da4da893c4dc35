# streamproc application image: `streamproc worker` by default; the same image runs
# one-shot commands such as `streamproc topics create`.
#
#   docker build -t streamproc:local .
#
# Every runtime dependency ships as a binary wheel for CPython 3.11 on linux/amd64,
# so the slim base needs no compiler.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Unprivileged user that runs the app. Its home /app is the working directory and holds
# Faust's data directory (~/.local/state/streamproc, STREAMPROC_DATA_DIR), so it must be writable.
RUN groupadd --system --gid 10001 streamproc \
 && useradd --system --uid 10001 --gid streamproc --home-dir /app --create-home \
        --shell /usr/sbin/nologin streamproc

# Install the package (runtime dependencies only, no dev extra) from a throw-away
# source copy; only the installed package and its console script stay in the image.
COPY pyproject.toml /tmp/build/
COPY streamproc /tmp/build/streamproc
RUN pip install /tmp/build \
 && rm -rf /tmp/build

# Topic contracts live beside the package in the source tree, not inside it, so a
# non-editable install cannot find them on its own: copy them and point the app at them.
COPY topics /app/topics
ENV STREAMPROC_TOPICS_DIR=/app/topics

WORKDIR /app
# numeric id, so runtimes that enforce a non-root user can verify it
USER 10001:10001

CMD ["streamproc", "worker"]
