# An image that runs any lakecast job with spark-submit:
#   docker build -t lakecast .
#   docker run --rm -e LAKECAST_LAKE=s3a://bucket/lake lakecast \
#     spark-submit /opt/lakecast/jobs/ingest.py --run-date 2011-12-09
FROM python:3.11-slim-bookworm

RUN apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless maven procps \
    && rm -rf /var/lib/apt/lists/*

ENV JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64 \
    PYSPARK_PYTHON=/usr/local/bin/python \
    PYTHONUNBUFFERED=1

WORKDIR /opt/lakecast
COPY setup.cfg pyproject.toml README.md ./
COPY jobs ./jobs
COPY schemas ./schemas
COPY conf ./conf
COPY dags ./dags
RUN pip install --no-cache-dir -e . \
    && python -m jobs.common.jars \
    && SPARK_HOME=$(python -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))') \
    && cp .cache/jars/*.jar "$SPARK_HOME/jars/" \
    && ln -s "$SPARK_HOME/bin/spark-submit" /usr/local/bin/spark-submit \
    && rm -rf /root/.m2

CMD ["lakecast", "--help"]
