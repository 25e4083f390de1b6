"""What every capability stands on: settings, the database and Redis, Redis keys,
errors, time, logs, metrics, locks, rate limits and the job queue. Imports no
other package of ``shared``."""
