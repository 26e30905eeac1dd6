# An image that runs any lakecast job with spark-submit, built from the lock file:
#   docker build -t lakecast .          (any architecture Debian and PyPI serve: amd64, arm64)
#   docker run --rm -e LAKECAST_LAKE=s3a://bucket/lake lakecast \
#     spark-submit /opt/lakecast/jobs/ingest.py --run-date 2011-12-09
FROM python:3.11-slim-bookworm

# default-jre-headless is OpenJDK 17 on bookworm; /usr/lib/jvm/default-java points at it on
# every architecture.
RUN apt-get update \
    && apt-get install -y --no-install-recommends default-jre-headless maven procps \
    && rm -rf /var/lib/apt/lists/*

ENV JAVA_HOME=/usr/lib/jvm/default-java \
    PYSPARK_PYTHON=/usr/local/bin/python \
    PYTHONUNBUFFERED=1

WORKDIR /opt/lakecast
# Dependencies first (a layer that changes only with the lock), then the project on top.
COPY requirements.lock ./
RUN pip install --no-cache-dir -r requirements.lock
COPY setup.cfg pyproject.toml README.md ./
COPY jobs ./jobs
COPY schemas ./schemas
COPY conf ./conf
COPY dags ./dags
RUN pip install --no-cache-dir --no-deps -e . \
    && python -m jobs.common.jars \
    && SPARK_HOME=$(python -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))') \
    && cp .cache/jars/*.jar "$SPARK_HOME/jars/" \
    && ln -s "$SPARK_HOME/bin/spark-submit" /usr/local/bin/spark-submit \
    && rm -rf /root/.m2

# Jobs run as an unprivileged user; the default lake folder is theirs.
RUN useradd --create-home --uid 10001 lakecast \
    && mkdir -p /opt/lakecast/lake && chown -R lakecast /opt/lakecast/lake /opt/lakecast/.cache
USER lakecast

CMD ["lakecast", "--help"]
