"""Jobs that push to departments' own systems (procrastinate, in PostgreSQL)."""

from __future__ import annotations

from procrastinate import JobContext, RetryStrategy
from procrastinate.contrib.django import app

from alerts.delivery import departments, people

# 2, 4, 8 … 256 s between attempts: a department's server that is down for a few minutes still
# gets every summons, in order of the retries.
RETRY = RetryStrategy(max_attempts=departments.MAX_ATTEMPTS, exponential_wait=2)


@app.task(
    name=departments.DELIVERY_TASKS["webhook"], queue="deliveries", retry=RETRY, pass_context=True
)
def deliver_webhook(context: JobContext, delivery_id: int) -> str:
    return departments.webhook_attempt(delivery_id=delivery_id, attempt=context.job.attempts)


@app.task(
    name=departments.DELIVERY_TASKS["mqtt"], queue="deliveries", retry=RETRY, pass_context=True
)
def deliver_mqtt(context: JobContext, delivery_id: int) -> str:
    return departments.mqtt_attempt(delivery_id=delivery_id, attempt=context.job.attempts)


# Paging falls back to the person's next channel quickly: 2 then 4 s, three attempts in all.
NOTIFY_RETRY = RetryStrategy(max_attempts=people.MAX_ATTEMPTS, exponential_wait=2)


@app.task(name=people.SEND_TASK, queue="notifications", retry=NOTIFY_RETRY, pass_context=True)
def send_notification(context: JobContext, notification_id: int, step: int = 0) -> str:
    return people.send_attempt(
        notification_id=notification_id, attempt=context.job.attempts, step=step
    )
