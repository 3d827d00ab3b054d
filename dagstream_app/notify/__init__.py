"""Notifications about gates, sent from the outbox off the write path (docs/gates.md).

- :mod:`.wakeup`: the nudge a commit gives this process's sender;
- :mod:`.mail` and :mod:`.webhooks`: one message of each kind, sent;
- :mod:`.sender`: a round of sending (:func:`.sender.send_due`), the thread that runs
  rounds inside a server process, and the loop of ``manage.py dagstream_notify``.

What is sent, and to whom, is written by :mod:`dagstream_app.services.outbox`.
"""
