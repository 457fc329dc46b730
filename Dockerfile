# The Airflow image of the docker-compose stack (docker-compose.yaml builds it): the official image of
# the Airflow version pinned in requirements.txt, for the Python the constraints were resolved with,
# plus the runtime requirements under constraints.txt, installed as the airflow user as
# https://airflow.apache.org/docs/docker-stack/build.html recommends. Keep the tag in step with the
# apache-airflow pin (tests/test_docker_compose.py checks it).
FROM apache/airflow:3.3.2-python3.11

USER airflow
COPY requirements.txt constraints.txt /opt/voice-agent/
RUN pip install --no-cache-dir -r /opt/voice-agent/requirements.txt -c /opt/voice-agent/constraints.txt
