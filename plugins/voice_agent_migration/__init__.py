"""Reusable pieces of the voice_agent -> multi-tenant migration DAG."""
