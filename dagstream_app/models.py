"""Persistent state of DAG executions and their event log.

Nothing outside :mod:`dagstream_app.services` writes these models.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from dagstream_app.protocol import (
    DAG_ID_PATTERN,
    GATE_STATUS_TO_DECISION,
    TERMINAL_STATUSES,
    Decision,
)
from dagstream_app.vocabulary import STATUS_LABELS

dag_id_validator = RegexValidator(
    DAG_ID_PATTERN,
    _("A DAG id is 1-100 characters of letters, digits, '_', '.' or '-', and not '.' or '..'."),
)


class Dag(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running", STATUS_LABELS["running"]
        PAUSED = "paused", STATUS_LABELS["paused"]
        CANCELLING = "cancelling", STATUS_LABELS["cancelling"]
        CANCELLED = "cancelled", STATUS_LABELS["cancelled"]
        COMPLETED = "completed", STATUS_LABELS["completed"]
        FAILED = "failed", STATUS_LABELS["failed"]

    dag_id = models.CharField(primary_key=True, max_length=100, validators=[dag_id_validator])
    name = models.CharField(max_length=200, blank=True, db_index=True)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.RUNNING, db_index=True
    )
    budget = models.FloatField(null=True, blank=True)
    spent = models.FloatField(default=0.0)
    results = models.JSONField(null=True, blank=True)
    last_seq = models.BigIntegerField(default=0)
    # Changes (to a new random value) whenever nodes or edges are added or
    # removed, so a process may keep the structure it read until then.
    structure_version = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The engine's last report or heartbeat: a live run whose engine has been
    # silent for ENGINE_STALE_SECONDS is shown as "engine not responding".
    engine_seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("DAG")
        verbose_name_plural = _("DAGs")
        ordering = ["-created_at"]
        permissions = [
            ("decide_gate", _("Can decide human gates")),
            ("control_dag", _("Can pause, resume and cancel DAG executions")),
        ]

    def __str__(self) -> str:
        return self.dag_id

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def remaining(self) -> float | None:
        return None if self.budget is None else self.budget - self.spent


class Node(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", STATUS_LABELS["pending"]
        RUNNING = "running", STATUS_LABELS["running"]
        WAITING = "waiting", STATUS_LABELS["waiting"]
        COMPLETED = "completed", STATUS_LABELS["completed"]
        FAILED = "failed", STATUS_LABELS["failed"]
        SKIPPED = "skipped", STATUS_LABELS["skipped"]
        CANCELLED = "cancelled", STATUS_LABELS["cancelled"]

    dag = models.ForeignKey(Dag, on_delete=models.CASCADE, related_name="nodes")
    node_id = models.CharField(max_length=200)
    label = models.CharField(max_length=200, blank=True)
    # The group its engine put it in (a fan-out's name), or "" (grouped by shape, if at all).
    group = models.CharField(max_length=200, blank=True, default="", db_default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    output = models.JSONField(null=True, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["dag", "node_id"], name="dagstream_node_unique"),
        ]
        # A group's counts per status, counted by the database (state/groups.py).
        indexes = [models.Index(fields=["dag", "group", "status"], name="dagstream_node_group")]

    def __str__(self) -> str:
        return f"{self.dag_id}/{self.node_id}"


class Edge(models.Model):
    dag = models.ForeignKey(Dag, on_delete=models.CASCADE, related_name="edges")
    src = models.CharField(max_length=200)
    dst = models.CharField(max_length=200)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["dag", "src", "dst"], name="dagstream_edge_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.dag_id}: {self.src} -> {self.dst}"


class Gate(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", STATUS_LABELS["pending"]
        APPROVED = "approved", STATUS_LABELS["approved"]
        REJECTED = "rejected", STATUS_LABELS["rejected"]
        MODIFIED = "modified", STATUS_LABELS["modified"]
        CLOSED = "closed", STATUS_LABELS["closed"]  # its run ended before anyone decided

    dag = models.ForeignKey(Dag, on_delete=models.CASCADE, related_name="gates")
    node_id = models.CharField(max_length=200)
    presentation = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    feedback = models.TextField(blank=True)
    decided_by = models.CharField(max_length=150, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    timeout_at = models.DateTimeField(null=True, blank=True)
    default_decision = models.CharField(max_length=16, blank=True)
    # Who may decide it (usernames, "group:<name>"); empty: whoever may decide the run's gates.
    assignees = models.JSONField(default=list, blank=True)
    # Approvals from distinct people it needs; one reject decides it.
    quorum = models.PositiveSmallIntegerField(default=1, db_default=1)
    # The votes cast while it waited ({"voter", "decision", "feedback", "at"}), in order;
    # appended under the run's row lock (services.votes), so each person votes once.
    votes = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["dag", "node_id"], name="dagstream_gate_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.dag_id}/{self.node_id} ({self.status})"

    @property
    def decision(self) -> Decision | None:
        """The protocol decision (approve / reject / modify), or None while pending."""
        return GATE_STATUS_TO_DECISION.get(self.status)


class Event(models.Model):
    dag = models.ForeignKey(Dag, on_delete=models.CASCADE, related_name="events")
    seq = models.BigIntegerField()
    type = models.CharField(max_length=32)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField()
    # Set on execution_state events caused by a person (pause / resume / cancel):
    # the engine's commands() reads these, so they reach it exactly once.
    command = models.CharField(max_length=16, blank=True)
    # A node_state event's node and status, also as columns (its payload has them): history
    # counts a fan-out's members at an earlier event in SQL (state.earlier). Blank otherwise.
    node_id = models.CharField(max_length=200, blank=True, default="", db_default="")
    status = models.CharField(max_length=16, blank=True, default="", db_default="")

    class Meta:
        ordering = ["dag", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["dag", "seq"], name="dagstream_event_seq_unique"),
        ]
        # A run's events of one type, in order (its execution_state for the Gantt's pauses
        # and the engine's health, its structure changes and cost updates for history)
        # without reading the rest of its log.
        indexes = [models.Index(fields=["dag", "type", "seq"], name="dagstream_event_type")]

    def __str__(self) -> str:
        return f"{self.dag_id}#{self.seq} {self.type}"


class CommandReceipt(models.Model):
    """A client command id that was applied, so a repeat is acknowledged, not re-applied."""

    dag = models.ForeignKey(Dag, on_delete=models.CASCADE, related_name="receipts")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    command_id = models.CharField(max_length=100)
    type = models.CharField(max_length=32)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["dag", "user", "command_id"], name="dagstream_receipt_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.dag_id}: {self.type} #{self.command_id}"


class ApiToken(models.Model):
    """A bearer token for non-browser clients; only its SHA-256 is stored."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="dagstream_tokens"
    )
    name = models.CharField(max_length=100, blank=True)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(max_length=12, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("API token")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"


class HeldTask(models.Model):
    """Work an engine handed back while its run waits for a person (see docs/celery.md).

    A task message of a paused run, or of a gate nobody has decided yet, is kept
    here instead of in a worker slot, and sent again when the wait is over; a
    budget gate's row is the decision still to be carried out. ``message`` is
    opaque to dagstream (the engine's own encoding); ``key`` makes a message
    delivered twice held once.
    """

    class Reason(models.TextChoices):
        PAUSED = "paused"  # sent again when the run runs again
        GATE = "gate"  # sent again when its gate is decided
        BUDGET_GATE = "budget_gate"  # the decision is carried out once it is made

    dag = models.ForeignKey(Dag, on_delete=models.CASCADE, related_name="held_tasks")
    key = models.CharField(max_length=200, unique=True)
    node_id = models.CharField(max_length=200)
    reason = models.CharField(max_length=16, choices=Reason.choices)
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.dag_id}/{self.node_id} ({self.reason})"


class Ticket(models.Model):
    """A single-use, short-lived pass onto one DAG's WebSocket; only its SHA-256 is stored.

    Browsers cannot send ``Authorization`` on a WebSocket: an app on another
    origin asks for a ticket over HTTP and passes it as ``?ticket=``.
    """

    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="dagstream_tickets"
    )
    dag = models.ForeignKey(Dag, on_delete=models.CASCADE, related_name="tickets")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)
    # What the ticket was asked with: its socket lasts no longer than that token
    # (revoking it deletes its unused tickets too) or that session.
    issuer_token = models.ForeignKey(
        ApiToken, null=True, blank=True, on_delete=models.CASCADE, related_name="tickets"
    )
    issuer_session = models.CharField(max_length=40, blank=True, editable=False)

    class Meta:
        verbose_name = _("WebSocket ticket")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"ticket for {self.dag_id} ({self.user})"


class GateLink(models.Model):
    """A signed link to one gate for one person, as sent in a notification.

    The link opens the gate (after sign-in); with ``GATE_LINKS_DECIDE`` it may decide
    that gate as that person, once, before ``expires_at``: ``used_at`` records that.
    """

    gate = models.ForeignKey(Gate, on_delete=models.CASCADE, related_name="links")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="dagstream_gate_links"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("gate link")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"link to {self.gate} for {self.user}"


class Notification(models.Model):
    """One message of the notification outbox (see docs/gates.md, Notifications).

    A gate that opens (or waits past ``ESCALATE_AFTER_SECONDS``) writes one ``gate``
    row in its own transaction; the sender later expands it into one ``email`` row per
    person and one ``webhook`` row per URL, and delivers those. ``key`` makes each
    message written once; a sender claims due rows with a lease (``lease``,
    ``lease_until``), so each is sent by one sender at a time, and a failure is tried
    again at ``next_attempt_at``.
    """

    class Channel(models.TextChoices):
        GATE = "gate"  # expanded by the sender into the rows below
        EMAIL = "email"
        WEBHOOK = "webhook"

    class Stage(models.TextChoices):
        OPENED = "opened"
        ESCALATED = "escalated"

    class Status(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"
        SKIPPED = "skipped"  # the gate was decided or closed before it went out
        FAILED = "failed"  # every attempt failed

    gate = models.ForeignKey(Gate, on_delete=models.CASCADE, related_name="notifications")
    key = models.CharField(max_length=300, unique=True)
    stage = models.CharField(max_length=16, choices=Stage.choices)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    link = models.ForeignKey(GateLink, null=True, blank=True, on_delete=models.SET_NULL)
    target = models.CharField(max_length=500, blank=True)  # an address, or a webhook URL
    attempts = models.IntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    lease = models.CharField(max_length=32, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="dagstream_outbox_due"),
        ]

    def __str__(self) -> str:
        return f"{self.channel} {self.stage} for {self.gate} ({self.status})"
