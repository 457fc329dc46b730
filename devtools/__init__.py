"""Local tooling: embedded PostgreSQL, the legacy demo database, Airflow runs. Not deployed."""
