"""The service chassis: plumbing every service needs, and no domain logic.

Configuration, JSON logging, request context, error responses, health and
readiness, metrics, the database session, Redis, Kafka publishing, migrations
and the event contracts live here once, so that each service is only its
domain. An engineer who knows one service's wiring knows them all.
"""
